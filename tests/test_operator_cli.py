"""`henpin operator add|set-role|reset-password`: names checked as the inbox checks them, every
change (and every refusal) in the audit log with source `cli`, passwords from stdin or a prompt
and never from the command line, a role changed only by its own command; and demo mode's admin
made once, not reset at each start.

Run in-process through `henpin.cli.main` (two as a script runs them, in a subprocess) against a
SQLite store in a fresh HENPIN_HOME.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from henpin import accounts, cli
from henpin.accounts import SignInStatus, add_demo_admin
from henpin.store.db import session_scope
from henpin.store.models import AuditEntry, Operator

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "a long enough password"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no developer's .env leaks in
    monkeypatch.setenv("HENPIN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HENPIN_DATABASE_URL", raising=False)
    return tmp_path / "home"


def store(home: Path) -> str:
    return f"sqlite:///{(home / 'henpin.db').resolve()}"


def henpin(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`henpin ARGS` in this process (stdin not a terminal), as a finished process."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(args))
    except SystemExit as exit_:  # argparse refusing the command line
        code = int(exit_.code or 0)
    finally:
        sys.stdin = saved
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def henpin_process(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`henpin ARGS` as a script runs it: its own process, stdin a pipe."""
    return subprocess.run(
        [sys.executable, "-m", "henpin.cli", *args],
        input=stdin,
        env=dict(os.environ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def audit_rows(url: str) -> list[tuple[str, str, str, str]]:
    with session_scope(url) as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        return [(e.actor, e.action, e.target, e.source) for e in rows]


def operators(url: str) -> dict[str, str]:
    with session_scope(url) as s:
        return {op.name: op.role for op in s.scalars(select(Operator))}


def signs_in(url: str, name: str, password: str) -> bool:
    return accounts.sign_in(url, name, password).status is SignInStatus.SIGNED_IN


@pytest.mark.e2e
def test_add_reads_the_password_from_stdin_and_is_audited(home: Path) -> None:
    done = henpin_process(
        "operator", "add", "carol", "--role", "viewer", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout
    url = store(home)
    assert signs_in(url, "carol", PASSWORD)
    actor, action, target, source = audit_rows(url)[0]
    assert (action, target, source) == ("operator-added", "carol", "cli")
    assert actor.startswith("cli:")


@pytest.mark.e2e
def test_a_password_on_the_command_line_is_refused(home: Path) -> None:
    refused = henpin_process("operator", "add", "carol", "--password", "hunter2-hunter2")
    assert refused.returncode == 2
    assert "--password-stdin" in refused.stderr
    assert not (home / "henpin.db").exists() or "carol" not in operators(store(home))


@pytest.mark.parametrize("name", ["bad\x07name", " carol", "carol ", "line\u2028break", ""])
def test_add_refuses_names_the_inbox_refuses(home: Path, name: str) -> None:
    refused = henpin("operator", "add", name)
    assert refused.returncode == 1
    assert "nothing changed" in refused.stderr
    url = store(home)
    assert operators(url) == {}
    assert [(a, s) for _, a, _, s in audit_rows(url)] == [("operator-change-refused", "cli")]
    with pytest.raises(accounts.AccountRefused):  # the same rule as the inbox's form
        accounts.valid_name(name)


def test_add_on_a_taken_name_changes_nothing(home: Path) -> None:
    url = store(home)
    assert (
        henpin(
            "operator", "add", "vera", "--role", "viewer", "--password-stdin", stdin=PASSWORD
        ).returncode
        == 0
    )
    again = henpin("operator", "add", "vera", "--role", "admin")
    assert again.returncode == 1
    assert "already an operator" in again.stderr
    assert operators(url) == {"vera": "viewer"}  # not silently made admin
    assert signs_in(url, "vera", PASSWORD)  # nor given a new password


def test_set_role_is_its_own_command_and_keeps_an_admin(home: Path) -> None:
    url = store(home)
    henpin("operator", "add", "root", "--role", "admin")
    henpin("operator", "add", "vera", "--role", "viewer")
    made = henpin("operator", "set-role", "vera", "admin")
    assert made.returncode == 0, made.stderr
    assert henpin("operator", "set-role", "root", "operator").returncode == 0
    last = henpin("operator", "set-role", "vera", "viewer")
    assert last.returncode == 1
    assert "last active admin" in last.stderr
    assert operators(url) == {"root": "operator", "vera": "admin"}
    changes = [(a, t, s) for _, a, t, s in audit_rows(url) if a.startswith("operator-")]
    assert changes[2:] == [
        ("operator-role-changed", "vera", "cli"),
        ("operator-role-changed", "root", "cli"),
        ("operator-change-refused", "vera", "cli"),
    ]


def test_reset_password_prints_a_new_one_once_and_is_audited(home: Path) -> None:
    url = store(home)
    henpin("operator", "add", "carol", "--password-stdin", stdin=PASSWORD)
    reset = henpin("operator", "reset-password", "carol")
    assert reset.returncode == 0, reset.stderr
    new_password = reset.stdout.strip().rsplit(" ", 1)[-1]
    assert signs_in(url, "carol", new_password)
    assert not signs_in(url, "carol", PASSWORD)
    assert audit_rows(url)[1][1:] == ("operator-password-reset", "carol", "cli")
    carol = accounts.find_operator(url, "carol")
    assert carol is not None and carol.session_epoch == 1  # her open sessions end


def test_a_short_password_from_stdin_is_refused(home: Path) -> None:
    refused = henpin("operator", "add", "carol", "--password-stdin", stdin="short\n")
    assert refused.returncode == 1
    assert "at least 12 characters" in refused.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_at_a_terminal_the_password_is_asked_twice(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(sys, "stdin", _Terminal())
    assert cli.main(["operator", "add", "carol"]) == 0
    assert signs_in(store(home), "carol", PASSWORD)
    mismatch = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(mismatch))
    assert cli.main(["operator", "reset-password", "carol"]) == 1
    assert signs_in(store(home), "carol", PASSWORD)


def test_the_demo_admin_is_made_once_and_not_reset_at_each_start(home: Path) -> None:
    url = store(home)
    henpin("operator", "add", "root", "--role", "admin")  # migrates the store
    assert add_demo_admin(url, "demo", "first-demo-password")
    accounts.reset_password(url, "demo", by="root", password="changed-by-an-admin")
    accounts.set_role(url, "demo", "viewer", by="root")
    assert not add_demo_admin(url, "demo", "first-demo-password")  # the next `henpin up`
    assert signs_in(url, "demo", "changed-by-an-admin")
    assert operators(url)["demo"] == "viewer"
