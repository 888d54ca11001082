"""Prefect's server on SQLite: a write that meets another writer waits its turn
(`henpin.prefect_serve.writes_wait_their_turn`), on Prefect's own database configuration."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from prefect.server.database import configurations

from henpin.prefect_serve import writes_wait_their_turn


async def read_then_write_beside_another_writer(db: Path) -> list[str]:
    """Transaction A reads, B writes and commits, then A writes: what each ended with."""
    config = configurations.AioSqliteConfiguration(f"sqlite+aiosqlite:///{db}")
    engine = await config.engine()
    async with engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE runs (name TEXT)"))
    ended: list[str] = []
    a_has_read = asyncio.Event()

    async def a() -> None:
        session = await config.session(engine)
        try:
            async with session, config.begin_transaction(session):
                await session.execute(sa.text("SELECT count(*) FROM runs"))
                a_has_read.set()
                await asyncio.sleep(0.3)  # B tries to write meanwhile
                await session.execute(sa.text("INSERT INTO runs VALUES ('a')"))
            ended.append("a committed")
        except sa.exc.OperationalError as error:
            ended.append(f"a failed: {error.orig}")

    async def b() -> None:
        await a_has_read.wait()
        session = await config.session(engine)
        async with session, config.begin_transaction(session):
            await session.execute(sa.text("INSERT INTO runs VALUES ('b')"))
        ended.append("b committed")

    await asyncio.gather(a(), b())
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.text("SELECT name FROM runs"))).scalars().all()
    await engine.dispose()
    return [*ended, f"rows {sorted(rows)}"]


def test_prefects_own_sqlite_transactions_fail_a_write_after_another_writer(
    tmp_path: Path,
) -> None:
    # What the server does without the change: the 503s of "database is locked".
    ended = asyncio.run(read_then_write_beside_another_writer(tmp_path / "prefect.db"))
    assert ended == ["b committed", "a failed: database is locked", "rows ['b']"]


def test_with_the_change_the_second_writer_waits_and_both_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = configurations.AioSqliteConfiguration
    monkeypatch.setattr(cls, "begin_transaction", cls.begin_transaction)  # undone after the test
    writes_wait_their_turn()
    ended = asyncio.run(read_then_write_beside_another_writer(tmp_path / "prefect.db"))
    assert ended == ["a committed", "b committed", "rows ['a', 'b']"]
