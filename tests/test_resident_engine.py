"""How the resident executor fits Prefect's engine and client to many runs in one process
(henpin/resident.py `engine_per_run`), checked without a server. The tests' own process runs
flows the same way (tests/conftest.py)."""

from __future__ import annotations


def test_the_first_retries_after_a_503_come_sooner_and_the_last_stay_prefects() -> None:
    import prefect.client.base as client_base

    from henpin.resident import engine_per_run

    engine_per_run()
    engine_per_run()  # idempotent: not a tenth of a tenth
    wait = client_base.clamped_poisson_interval  # what _send_with_retry draws each wait from

    first = [wait(2.0, 0.3) for _ in range(200)]  # Prefect's first wait: 2 s
    fourth = [wait(16.0, 0.3) for _ in range(200)]
    last = [wait(32.0, 0.3) for _ in range(200)]  # its fifth and last: 32 s
    assert all(0.14 <= w <= 0.26 for w in first), (min(first), max(first))
    assert all(1.12 <= w <= 2.08 for w in fourth), (min(fourth), max(fourth))
    assert all(22.4 <= w <= 41.6 for w in last), (min(last), max(last))


def test_a_run_thread_being_cancelled_reads_cancel_and_any_other_thread_prefects_intent() -> None:
    import threading

    import prefect.flow_engine as engine

    from henpin import resident

    resident.engine_per_run()
    seen: dict[str, object] = {}

    def as_a_run(name: str, cancelling: bool) -> None:
        running = resident.InFlight(flow_run=None)  # type: ignore[arg-type]
        running.cancel_requested = cancelling
        resident._this_thread.running = running
        seen[name] = engine._termination_intent()

    threads = [
        threading.Thread(target=as_a_run, args=("cancelled", True)),
        threading.Thread(target=as_a_run, args=("other", False)),
    ]
    for t in threads:
        t.start()
        t.join()
    assert seen == {"cancelled": "cancel", "other": None}
    assert engine._termination_intent() is None  # the test's own thread: Prefect's


def test_memory_ended_runs_freed_in_their_threads_arenas_goes_back_to_the_system() -> None:
    """Each run has a thread, and glibc a malloc arena per thread: what a run freed stays
    resident there until trimmed (henpin/resident.py `give_back_free_memory`)."""
    import threading

    import pytest

    from henpin.resident import _malloc_trim, give_back_free_memory, resident_memory_mb

    if _malloc_trim() is None:
        pytest.skip("not glibc: no malloc_trim")
    kept: list[bytes] = []

    def a_run() -> None:  # ~40 MB in blocks malloc serves (over pymalloc's 512 bytes)
        blocks = [bytes(2000) + bytes([i % 256]) for i in range(20_000)]
        kept.extend(blocks[::50])  # a few stay, scattered, as a run's results do

    runs = [threading.Thread(target=a_run) for _ in range(4)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    before = resident_memory_mb()
    give_back_free_memory()
    after = resident_memory_mb()
    assert len(kept) == 1_600
    assert before - after > 80, (before, after)
