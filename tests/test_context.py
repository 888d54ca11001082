"""The process context (henpin/context.py) shared by the threads of one process."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import func, select

from henpin.context import Context
from henpin.settings import Settings
from henpin.store.db import migrate, session_scope
from henpin.store.models import PolicyVersion

ROOT = Path(__file__).resolve().parents[1]


def test_threads_keeping_the_policy_version_at_once_all_get_the_policy(tmp_path: Path) -> None:
    # Ingestion opens cases side by side, and the resident executor runs flows in threads:
    # each asks for the policy in force, and the first ask keeps its version in the store.
    for round_ in range(5):
        url = f"sqlite:///{tmp_path / f'henpin-{round_}.db'}"
        migrate(url)
        context = Context(Settings(database_url=url, policies=ROOT / "policies.yaml"))
        context.policies.current()  # read policies.yaml before the threads race to keep it
        start = threading.Barrier(8)
        got: list[str] = []
        failed: list[BaseException] = []

        def ask(
            context: Context = context,
            start: threading.Barrier = start,
            got: list[str] = got,
            failed: list[BaseException] = failed,
        ) -> None:
            start.wait()
            try:
                got.append(context.policy_in_force().version)
            except BaseException as error:
                failed.append(error)

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert failed == [] and len(set(got)) == 1 and len(got) == 8
        with session_scope(url) as s:
            assert s.scalar(select(func.count()).select_from(PolicyVersion)) == 1
