"""The process's context: its settings, case store, policy in force, Amazon adapter and clock.

One per process, built at the edge and reached by the tasks through `current()` (or the
shortcuts below), instead of a cache in each module:

- an entry that runs tasks in its own process (a CLI command, the inbox, a test) may build one
  and `install()` it;
- a flow run's process is started by Prefect, not by Henpin: its context is the one this module
  installs at import, which reads the environment (and `.env`) on first use, as an entry would.

Each part is built once, on first use: the adapter then shares its rate limiter and token cache
between the process's threads, and the policy holder follows edits of policies.yaml. A test
installs a fresh context (tests/support.py `reset_process_caches`, tests/conftest.py) instead of
clearing caches by hand.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy.exc import IntegrityError

from henpin.amazon import AmazonAdapter
from henpin.policy import Policy, PolicyHolder
from henpin.regions import RegionAuthLog
from henpin.settings import Settings, load_settings
from henpin.store.db import session_scope
from henpin.store.models import PolicyVersion


def utc_now() -> datetime:
    return datetime.now(UTC)


class Context:
    """What the tasks of one process share. `settings` None: read from the environment on
    first use (so an entry may change the environment before anything runs). `adapter` None:
    built from the settings on first use (a test may pass its own)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        adapter: AmazonAdapter | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self.clock = clock
        self._adapter = adapter
        self._built_adapter = False  # a given adapter is its giver's to close
        self._policies: PolicyHolder | None = None
        self._kept_versions: set[str] = set()  # policy versions already kept in the case store
        self._lock = threading.RLock()
        self._runs_due: Callable[[], None] | None = None
        # Deployment ids by (Prefect API, "flow/deployment"): read once, not for every case run
        # created (henpin/runs.py `create_flow_run`, which reads again when one is gone).
        self.deployment_ids: dict[tuple[str, str], UUID] = {}

    def when_runs_due(self, wake: Callable[[], None] | None) -> None:
        """Call `wake` (from any thread) whenever this process makes a case's flow run due:
        starts one, resumes one, or starts one again. The runner's resident executor asks for
        due runs then, rather than when Prefect's event about it comes back through the server
        (about a second later on a busy server: bench P1 burst). None: no one to tell."""
        self._runs_due = wake

    def runs_due(self) -> None:
        """This process has just made a case's flow run due (see `when_runs_due`)."""
        wake = self._runs_due
        if wake is not None:
            wake()

    @property
    def settings(self) -> Settings:
        with self._lock:
            if self._settings is None:
                self._settings = load_settings()
            return self._settings

    @property
    def store_url(self) -> str:
        return self.settings.store_url

    @property
    def adapter(self) -> AmazonAdapter:
        """One adapter per process, so its rate limiter and token cache are shared. It records
        each region's login state in the data folder, for `henpin status`."""
        with self._lock:
            if self._adapter is None:
                settings = self.settings
                self._adapter = AmazonAdapter(settings, auth_log=RegionAuthLog(settings.home))
                self._built_adapter = True
            return self._adapter

    @property
    def policies(self) -> PolicyHolder:
        """policies.yaml as read at the edge, followed when it changes."""
        with self._lock:
            if self._policies is None:
                self._policies = PolicyHolder(self.settings.policies)
            return self._policies

    def now(self) -> datetime:
        return self.clock()

    def close(self) -> None:
        """Close the connections of the adapter this context built, if it built one (a test's
        context, replaced). An adapter given to it is left to whoever gave it."""
        with self._lock:
            if self._adapter is not None and self._built_adapter:
                self._adapter.close()
            self._adapter, self._built_adapter = None, False

    def policy_in_force(self) -> Policy:
        """The last good policy (a bad edit leaves the previous one in force and is reported).

        Every version a case is decided under is kept in the case store with its text, so a case
        can be explained (and replayed) later even after the file has changed."""
        policy = self.policies.current()
        if policy.version not in self._kept_versions:
            self._keep_version_text(policy)
        return policy

    def _keep_version_text(self, policy: Policy) -> None:
        content = self.settings.policies.read_bytes()
        if not policy.version.endswith(hashlib.sha256(content).hexdigest()[:12]):
            return  # the file changed again meanwhile; the next call keeps the newer one
        try:
            with session_scope(self.store_url) as s:
                if s.get(PolicyVersion, policy.version) is None:
                    s.add(PolicyVersion(version=policy.version, content=content.decode("utf-8")))
        except IntegrityError:
            pass  # kept at the same moment by another thread (cases open side by side) or process
        self._kept_versions.add(policy.version)


_current = Context()


def install(context: Context) -> Context:
    """Make `context` the process's context (from now on, for every thread); returns it."""
    global _current
    _current = context
    return context


def current() -> Context:
    return _current


# Shortcuts for the tasks: the current context's parts.


def settings() -> Settings:
    return _current.settings


def store_url() -> str:
    return _current.store_url


def adapter() -> AmazonAdapter:
    return _current.adapter


def policy_in_force() -> Policy:
    return _current.policy_in_force()


def now() -> datetime:
    return _current.now()
