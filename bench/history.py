"""Benchmark results kept over time: each full run writes `bench/results/DATE.json` (committed),
and the printed table sets the new run beside the last committed one.

A result file holds the top-level figures (the keys of `bench/results.json`), `machine` (cores,
CPU model, RAM, Python, OS, versions, load average), `load` (the sizes run and the SP-API usage
plans the emulator enforced) and `details`. A quick run (`BENCH_QUICK=1`) writes no file here:
its smaller N is not comparable with a full run's.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"

#: The SP-API operations the benchmark exercises: their usage plans go into each result's load.
OPERATIONS = (
    "searchOrders",
    "getOrder",
    "createFeedDocument",
    "createFeed",
    "getFeed",
    "getFeedDocument",
    "createReport",
    "getReport",
    "getReportDocument",
    "listFinancialEventsByOrderId",
)


def quotas() -> dict[str, dict[str, float]]:
    """The usage plans the emulator enforces (Amazon's models' own), per operation."""
    from emulator.spec import usage_plans

    plans = usage_plans()
    return {
        op: {"rate_per_s": plans[op].rate, "burst": plans[op].burst}
        for op in OPERATIONS
        if op in plans
    }


def result_path(started: datetime, results: Path = RESULTS) -> Path:
    """`DATE.json` for the run's start date; a second full run on the same day gets the time
    too, so a committed result is never overwritten."""
    path = results / f"{started:%Y-%m-%d}.json"
    if path.exists():
        path = results / f"{started:%Y-%m-%d-%H%M%S}.json"
    return path


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def last_committed(results: Path = RESULTS) -> tuple[str, dict[str, Any]] | None:
    """The newest result committed in git (by its `started_at`, else its name), as committed;
    outside a git checkout, the newest file in the folder."""
    rel = results.relative_to(ROOT).as_posix()
    listed = _git("ls-files", "--", rel)
    found: list[tuple[str, str, dict[str, Any]]] = []
    if listed is not None:
        for path in listed.split():
            if not path.endswith(".json") or Path(path).parent.as_posix() != rel:
                continue  # results/memory/ holds the separate memory runs
            text = _git("show", f"HEAD:{path}")
            with contextlib.suppress(ValueError):
                data = json.loads(text or "")
                found.append((str(data.get("started_at") or ""), Path(path).name, data))
    else:
        for file in results.glob("*.json"):
            with contextlib.suppress(ValueError, OSError):
                data = json.loads(file.read_text())
                found.append((str(data.get("started_at") or ""), file.name, data))
    if not found:
        return None
    _, name, data = max(found, key=lambda f: (f[0], f[1]))
    return name, data


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def beside(new: dict[str, Any], old: tuple[str, dict[str, Any]] | None, *, label: str) -> str:
    """Each top-level figure of this run beside the last committed run's."""
    if old is None:
        return "No committed result in bench/results/ to compare with."
    name, previous = old
    keys = [
        k
        for k in dict.fromkeys([*previous, *new])
        if k not in ("machine", "load", "details", "started_at", "mode", "source")
        and not isinstance(new.get(k, previous.get(k)), (dict, list))
    ]
    head = f"this run ({label})"
    mode = previous.get("mode", "full")
    then = f"{name} ({mode})"
    width = max(len(k) for k in keys) if keys else 10
    w_old = max([len(then), *(len(_cell(previous.get(k))) for k in keys)])
    lines = [f"{'figure':<{width}}  {then:<{w_old}}  {head}", "-" * (width + w_old + len(head) + 4)]
    lines += [f"{k:<{width}}  {_cell(previous.get(k)):<{w_old}}  {_cell(new.get(k))}" for k in keys]
    machine = previous.get("machine") or {}
    if machine:
        lines.append(
            f"({name}: {machine.get('cores')} cores, {machine.get('cpu')}, "
            f"{machine.get('memory_gib')} GiB, Python {machine.get('python')})"
        )
    lines += [
        f"machine speed, {which}: {speeds}"
        for which, speeds in (("then", speed(machine)), ("now", speed(new.get("machine") or {})))
        if speeds
    ]
    return "\n".join(lines)


def speed(machine: dict[str, Any]) -> str:
    """`machine_speed()` at a run's start and end, as one line ("" for runs before 2026-12-07)."""
    return "; ".join(
        f"at {when} python {read['python_s']} s, syscalls {read['syscalls_s']} s"
        for when in ("start", "end")
        if isinstance(read := machine.get(f"speed_at_{when}"), dict)
    )
