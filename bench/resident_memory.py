"""The resident runner's memory after many cases go through it (`BENCH_ONLY=memory`, not part of
a full run: 10,000 cases take about an hour).

The default layout (Prefect on SQLite, one resident `henpin runner`) against the emulator with its
usage plans lifted, as P4 engine capacity. Cases arrive in ingestion runs of `chunk` orders, each
with a buyer's cancel request (1 in 4 cheap: policy cancels it and it closes; the others end
waiting for an operator); the runner's RSS is sampled every 5 s throughout. Reported: RSS after
the first chunk (warm), at half the cases, at the end, and the growth over the second half; per
chunk, the reading at its end and its lowest, and the second half's growth read from the lows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import Children, RssSampler, log, start_emulator
from p4_throughput import run as ingest_and_wait
from single import SingleStack


def run(
    children: Children,
    work: Path,
    *,
    cases: int,
    chunk: int = 1000,
    progress: Callable[[dict[str, Any]], None] = lambda so_far: None,
) -> dict[str, Any]:
    """`cases` through one resident runner; `progress` gets the figures so far after each chunk
    (an interrupted hour still leaves them)."""
    stack = SingleStack(home=work / "memory", children=children, time_scale=10.0)
    stack.start()
    children.stop("emulator")
    stack.emulator = start_emulator(children, "emulator-lifted", 10.0, usage_plans="lifted")
    pid = stack.start_runner()
    chunks: list[dict[str, Any]] = []
    started = time.time()
    with RssSampler(pid, every=5.0) as rss:
        done = 0
        for i in range(-(-cases // chunk)):
            n = min(chunk, cases - done)
            chunk_started = time.time()
            result = ingest_and_wait(
                f"memory, chunk {i + 1}",
                emulator=stack.emulator,
                store=stack.store,
                prefect=stack.settings,
                total=n,
                requests=n,
                prefix=600 + i,
                timeout=3600,
            )
            done += n
            chunks.append(
                {
                    "cases_so_far": done,
                    "rss_mb": rss.samples[-1][1] if rss.samples else None,
                    # Lowest while the chunk ran: the runner's RSS also follows the runs in
                    # flight, so one reading at the end is noisy; the lows show the heap.
                    "low_mb": min(
                        (mb for t, mb in rss.samples if t >= chunk_started), default=None
                    ),
                    "cases_per_hour": result["cases_per_hour"],
                    "ready_at_epoch": result["ready_at_epoch"],
                }
            )
            log(f"memory: {done} cases through the runner, RSS {chunks[-1]['rss_mb']} MB")
            progress(summary(chunks, rss, children.procs["runner"].pid != pid, started))
    return summary(chunks, rss, children.procs["runner"].pid != pid, started)


def summary(
    chunks: list[dict[str, Any]], rss: RssSampler, restarted: bool, started: float
) -> dict[str, Any]:
    done = chunks[-1]["cases_so_far"]
    half = next(c for c in chunks if c["cases_so_far"] >= done / 2)
    end_mb = rss.at(chunks[-1]["ready_at_epoch"])
    half_mb = rss.at(half["ready_at_epoch"])
    after_half = chunks[chunks.index(half) + 1 :]
    lows = [c["low_mb"] for c in after_half if c["low_mb"] is not None]
    return {
        "cases": done,
        "elapsed_s": round(time.time() - started),
        "runner_restarted": restarted,  # a recycle (exit 75) would reset the figure
        "warm_mb": rss.at(chunks[0]["ready_at_epoch"]),
        "half_mb": half_mb,
        "half_at_cases": half["cases_so_far"],
        "end_mb": end_mb,
        "growth_second_half_mb": round(end_mb - half_mb, 1) if end_mb and half_mb else None,
        # The same growth read from each chunk's lowest RSS: the last chunk's low minus the
        # first low after half the cases (None with fewer than two chunks after half).
        "growth_second_half_low_mb": round(lows[-1] - lows[0], 1) if len(lows) >= 2 else None,
        "peak_mb": max(mb for _, mb in rss.samples),
        "chunks": chunks,
    }
