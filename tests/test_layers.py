"""The import contracts of pyproject.toml's [tool.importlinter] hold: the layers import one way
(interfaces → application → flows → tasks → library → domain), only the adapter imports
python-amazon-sp-api, and the emulator imports none of Henpin. `make lint` runs the same check
(`lint-imports`); this test runs it in-process so CI (`make test`) checks it too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    here = Path.cwd()
    os.chdir(REPO)  # import-linter finds the packages on sys.path, relative to the checkout
    try:
        status = lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True)
    finally:
        os.chdir(here)
    report = capsys.readouterr().out
    assert "BROKEN" not in report and " broken" in report, report
    assert status == 0, report
