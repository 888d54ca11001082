"""What a flow run and a task run cost Prefect's server, measured apart from Henpin's flows.

A Prefect server started with Henpin's settings (`prefect_env`, `SERVER_WRITES`; SQLite, in a
folder of its own), then, per number of tasks K: `runs` async flow runs of K trivial persisted
tasks each, 8 at a time, in one client process. The server's CPU seconds (its /proc stat)
from the first run to the last, and again once it has finished writing (no CPU for 2 s),
divided by the runs. Each K gets a fresh server, so a later K does not meet a bigger database.

    .venv/bin/python bench/server_cost.py            # K = 0, 3, 6; 120 runs each
    .venv/bin/python bench/server_cost.py 0,6 200    # K = 0 and 6; 200 runs each
    BENCH_CLIENT_LOG_LEVEL=WARNING .venv/bin/python bench/server_cost.py 6

Not part of `make bench`: it answers a planning question (docs/scaling.md, "What a case costs
Prefect's server"), what fewer task runs per case would save.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import Children, clean_env, cpu_s  # noqa: E402

AT_ONCE = 8


def measure(tasks: int, runs: int) -> dict[str, float]:
    """One fresh server (Henpin's recipe, henpin/supervisor/parts.py), `runs` flow runs of
    `tasks` tasks against it."""
    from henpin.supervisor.parts import prefect_env, prefect_server_part
    from henpin.supervisor.ports import free_port

    home = Path(tempfile.mkdtemp(prefix="henpin-server-cost-"))
    api = f"http://127.0.0.1:{(port := free_port())}/api"
    env = clean_env(**prefect_env(home, api))
    children = Children(home / "logs")
    try:
        server_pid = children.start(prefect_server_part(port, env), timeout=240)
        client_env = dict(env)
        if level := os.environ.get("BENCH_CLIENT_LOG_LEVEL"):
            client_env["PREFECT_LOGGING_LEVEL"] = level
        out = subprocess.run(
            [sys.executable, __file__, "--client", str(tasks), str(runs), str(server_pid)],
            env=client_env,
            capture_output=True,
            text=True,
            check=True,
        )
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        children.stop_all()


def client(tasks: int, runs: int, server_pid: int) -> None:
    """Runs the flows (in the process whose Prefect settings point at the server)."""
    from prefect import flow, task

    @task(persist_result=True)
    def step(i: int, j: int) -> int:
        return i + j

    @flow(name=f"server-cost-{tasks}-tasks", persist_result=True)
    async def case_like(i: int) -> int:
        return sum(step(i, j) for j in range(tasks))

    async def all_runs() -> None:
        gate = asyncio.Semaphore(AT_ONCE)

        async def one(i: int) -> None:
            async with gate:
                await case_like(i)

        await asyncio.gather(*(one(i) for i in range(runs)))

    asyncio.run(case_like(-1))  # the flow and its first client made before measuring
    before, started = cpu_s(server_pid), time.time()
    asyncio.run(all_runs())
    during, elapsed = cpu_s(server_pid) - before, time.time() - started
    last = cpu_s(server_pid)
    while True:  # until the server has written what the runs sent
        time.sleep(2)
        now = cpu_s(server_pid)
        if now - last < 0.1:
            break
        last = now
    print(
        json.dumps(
            {
                "tasks": tasks,
                "runs": runs,
                "elapsed_s": round(elapsed, 1),
                "server_cpu_ms_per_run": round(during / runs * 1000, 1),
                "with_catch_up_ms": round((now - before) / runs * 1000, 1),
            }
        )
    )


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--client"]:
        client(int(args[1]), int(args[2]), int(args[3]))
        return
    counts = [int(k) for k in args[0].split(",")] if args else [0, 3, 6]
    runs = int(args[1]) if len(args) > 1 else 120
    for tasks in counts:
        print(json.dumps(measure(tasks, runs)), flush=True)


if __name__ == "__main__":
    main()
