"""What the suite needs from the machine, and what happens when it is missing.

A contributor's machine may lack PostgreSQL or Chromium: those tests are skipped with a reason
that says how to get them (README "Tests"). CI sets ``HENPIN_TEST_STRICT=1`` (``.ci/run``): there a
missing part fails the run, so CI tests everything it claims to.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

STRICT_ENV = "HENPIN_TEST_STRICT"


def missing(reason: str) -> NoReturn:
    """Skip (a contributor's machine) or fail (CI, ``HENPIN_TEST_STRICT=1``) for a missing part."""
    if os.environ.get(STRICT_ENV) == "1":
        pytest.fail(f"{reason} ({STRICT_ENV}=1: CI tests everything it claims)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)  # also called while a module is collected
