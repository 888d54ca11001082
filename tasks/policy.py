"""The policy in force, read at the edge (policies.yaml → typed models) once per change."""

from __future__ import annotations

from functools import cache

from henpin.policy import Policy, PolicyHolder
from tasks.store import settings


@cache
def _holder() -> PolicyHolder:
    return PolicyHolder(settings().policies)


def policy_in_force() -> Policy:
    """The last good policy (a bad edit leaves the previous one in force and is reported)."""
    return _holder().current()


def policy_error() -> str | None:
    return _holder().error
