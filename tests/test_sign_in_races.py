"""Sign-in and admin changes under concurrency, on a real SQLite file and on PostgreSQL (when
HENPIN_TEST_DATABASE_URL is set): threads press at once, as a script of a stranger would.

- Parallel wrong passwords get no more passwords checked than the lockout allows, and lock.
- The lockout is per name and client: a stranger locks out only their own client; guessing from
  many clients still stops, but not for a client the operator signed in from before.
- Two admins demoting each other at once never leave no active admin.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from henpin import accounts
from henpin.accounts import MAX_FAILED_LOGINS, AccountRefused, SignInStatus, add_operator
from henpin.store.db import session_scope
from henpin.store.models import AuditEntry, Operator

PASSWORD = "correct horse battery staple"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together; their results (or exceptions) in order."""
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # kept: the caller asserts on refusals
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def passwords_checked(url: str, name: str) -> int:
    """Sign-ins whose password was checked: each leaves `login` or `login-failed` (a locked
    attempt leaves `login-refused-locked` and is not checked)."""
    with session_scope(url) as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.actor == name, AuditEntry.action.in_(["login", "login-failed"]))
            )
            or 0
        )


@pytest.fixture(autouse=True)
def _cheaper_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at a tenth of its production memory: checks still take milliseconds (the window
    the review raced: count read, password checked, count written), on a machine shared by
    many tests."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8192))


def counted_before_any_check(monkeypatch: pytest.MonkeyPatch, attempts: int) -> None:
    """No password is checked before all `attempts` are counted: the moment "at once" means.
    Left to the scheduler on a loaded machine, the right password can be checked, and forgive
    the failures counted before it, while later attempts are not counted yet; those then get
    their passwords checked, as they would after any successful sign-in."""
    counted, lock, all_in = [0], threading.Lock(), threading.Event()
    take, check = accounts._take_attempt, accounts._right_password

    def take_attempt(*args: Any, **kwargs: Any) -> Any:
        attempt = take(*args, **kwargs)
        with lock:
            counted[0] += 1
            if counted[0] == attempts:
                all_in.set()
        return attempt

    def right_password(*args: Any, **kwargs: Any) -> bool:
        assert all_in.wait(timeout=60), "not every attempt was counted"
        return check(*args, **kwargs)

    monkeypatch.setattr(accounts, "_take_attempt", take_attempt)
    monkeypatch.setattr(accounts, "_right_password", right_password)


def test_parallel_wrong_passwords_check_no_more_than_the_lockout_allows(
    case_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_operator(case_store, "alice", PASSWORD)
    guesses = [f"guess-{i}" for i in range(19)] + [PASSWORD]
    counted_before_any_check(monkeypatch, len(guesses))
    results = at_once(
        [lambda pw=pw: accounts.sign_in(case_store, "alice", pw, now=T0) for pw in guesses]
    )
    statuses = [r.status for r in results]
    assert passwords_checked(case_store, "alice") <= MAX_FAILED_LOGINS
    assert statuses.count(SignInStatus.LOCKED) >= len(guesses) - MAX_FAILED_LOGINS
    assert statuses.count(SignInStatus.SIGNED_IN) <= 1


def test_parallel_wrong_passwords_lock_the_name(case_store: str) -> None:
    add_operator(case_store, "alice", PASSWORD)
    at_once(
        [lambda i=i: accounts.sign_in(case_store, "alice", f"guess-{i}", now=T0) for i in range(20)]
    )
    assert passwords_checked(case_store, "alice") == MAX_FAILED_LOGINS
    after = accounts.sign_in(case_store, "alice", PASSWORD, now=T0 + timedelta(minutes=1))
    assert after.status is SignInStatus.LOCKED
    assert after.retry_at == T0 + accounts.LOCKOUT
    alice = accounts.find_operator(case_store, "alice")
    assert alice is not None and alice.failed_logins == MAX_FAILED_LOGINS
    assert alice.locked_until == T0 + accounts.LOCKOUT


def test_a_stranger_locks_out_only_their_own_client(case_store: str) -> None:
    add_operator(case_store, "alice", PASSWORD)
    office, stranger = "198.51.100.7", "203.0.113.9"
    assert accounts.sign_in(case_store, "alice", PASSWORD, client=office, now=T0).operator
    for _ in range(MAX_FAILED_LOGINS):
        accounts.sign_in(case_store, "alice", "guess", client=stranger, now=T0)
    later = T0 + timedelta(minutes=1)
    locked = accounts.sign_in(case_store, "alice", PASSWORD, client=stranger, now=later)
    assert locked.status is SignInStatus.LOCKED  # the stranger's client: even the right one
    ok = accounts.sign_in(case_store, "alice", PASSWORD, client=office, now=later)
    assert ok.status is SignInStatus.SIGNED_IN
    at_home = accounts.sign_in(case_store, "alice", PASSWORD, client="192.0.2.44", now=later)
    assert at_home.status is SignInStatus.SIGNED_IN  # a new place is not locked by one stranger


def test_guessing_from_many_clients_stops_but_not_where_the_operator_signs_in(
    case_store: str,
) -> None:
    add_operator(case_store, "alice", PASSWORD)
    office = "198.51.100.7"
    assert accounts.sign_in(case_store, "alice", PASSWORD, client=office, now=T0).operator
    strangers = [f"203.0.113.{i}" for i in range(accounts.MAX_FAILED_LOGINS_PER_NAME)]
    at_once(
        [
            lambda c=c: accounts.sign_in(case_store, "alice", "guess", client=c, now=T0)
            for c in strangers
        ]
    )
    later = T0 + timedelta(minutes=1)
    new_place = accounts.sign_in(case_store, "alice", PASSWORD, client="192.0.2.44", now=later)
    assert new_place.status is SignInStatus.LOCKED  # guessing from anywhere new has stopped
    ok = accounts.sign_in(case_store, "alice", PASSWORD, client=office, now=later)
    assert ok.status is SignInStatus.SIGNED_IN
    after = T0 + accounts.LOCKOUT + timedelta(seconds=1)
    again = accounts.sign_in(case_store, "alice", PASSWORD, client="192.0.2.44", now=after)
    assert again.status is SignInStatus.SIGNED_IN


def test_an_admin_unlock_lifts_every_clients_lock(case_store: str) -> None:
    add_operator(case_store, "root", PASSWORD, role="admin")
    add_operator(case_store, "alice", PASSWORD)
    for _ in range(MAX_FAILED_LOGINS):
        accounts.sign_in(case_store, "alice", "guess", client="203.0.113.9", now=T0)
    accounts.unlock(case_store, "alice", by="root")
    again = accounts.sign_in(case_store, "alice", PASSWORD, client="203.0.113.9", now=T0)
    assert again.status is SignInStatus.SIGNED_IN


# --- keeping an admin -------------------------------------------------------------------------


def _admins(url: str) -> list[str]:
    with session_scope(url) as s:
        return list(
            s.scalars(
                select(Operator.name).where(Operator.role == "admin", Operator.active.is_(True))
            )
        )


def _make_admins(url: str, *names: str) -> None:
    with session_scope(url) as s:
        for op in s.scalars(select(Operator).where(Operator.name.in_(names))):
            op.role, op.active = "admin", True


def test_two_admins_demoting_each_other_never_leave_no_admin(case_store: str) -> None:
    add_operator(case_store, "alice", PASSWORD, role="admin")
    add_operator(case_store, "bob", PASSWORD, role="admin")
    for _ in range(10):
        _make_admins(case_store, "alice", "bob")
        results = at_once(
            [
                lambda: accounts.set_role(case_store, "bob", "operator", by="alice"),
                lambda: accounts.set_role(case_store, "alice", "operator", by="bob"),
            ]
        )
        assert len(_admins(case_store)) == 1
        refused = [r for r in results if isinstance(r, AccountRefused)]
        assert [r.code for r in refused] in (["last-admin"], ["not-admin"])


def test_two_admins_deactivating_each_other_never_leave_no_admin(case_store: str) -> None:
    add_operator(case_store, "alice", PASSWORD, role="admin")
    add_operator(case_store, "bob", PASSWORD, role="admin")
    for _ in range(10):
        _make_admins(case_store, "alice", "bob")
        at_once(
            [
                lambda: accounts.set_active(case_store, "bob", False, by="alice"),
                lambda: accounts.set_active(case_store, "alice", False, by="bob"),
            ]
        )
        assert len(_admins(case_store)) == 1


def test_an_admin_may_step_down_while_another_remains(case_store: str) -> None:
    add_operator(case_store, "alice", PASSWORD, role="admin")
    add_operator(case_store, "bob", PASSWORD, role="admin")
    accounts.set_role(case_store, "alice", "operator", by="alice")
    assert _admins(case_store) == ["bob"]
    with pytest.raises(AccountRefused) as refused:
        accounts.set_role(case_store, "bob", "viewer", by="alice")
    assert refused.value.code == "not-admin"  # alice is no admin any more
    assert _admins(case_store) == ["bob"]
