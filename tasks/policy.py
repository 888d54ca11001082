"""The policy in force, read at the edge (policies.yaml → typed models) once per change.

Every version a case is decided under is kept in the case store with its text, so a case can be
explained (and replayed) later even after the file has changed.
"""

from __future__ import annotations

import hashlib
from functools import cache

from henpin.policy import Policy, PolicyHolder
from henpin.store.db import session_scope
from henpin.store.models import PolicyVersion
from tasks.store import settings, store_url

_kept: set[tuple[str, str]] = set()  # (case store, version) already stored


@cache
def _holder() -> PolicyHolder:
    return PolicyHolder(settings().policies)


def policy_in_force() -> Policy:
    """The last good policy (a bad edit leaves the previous one in force and is reported)."""
    policy = _holder().current()
    if (store_url(), policy.version) not in _kept:
        _keep_version_text(policy)
    return policy


def _keep_version_text(policy: Policy) -> None:
    content = settings().policies.read_bytes()
    if not policy.version.endswith(hashlib.sha256(content).hexdigest()[:12]):
        return  # the file changed again meanwhile; the next call keeps the newer one
    with session_scope(store_url()) as s:
        if s.get(PolicyVersion, policy.version) is None:
            s.add(PolicyVersion(version=policy.version, content=content.decode("utf-8")))
    _kept.add((store_url(), policy.version))
