"""The soak script, small: a dozen buyer cancel requests under SP-API faults, one kill of the
runner (the resident executor) while it executes flow runs, and one Prefect server kill (while
cases are mid-way), then the checks from the emulator's side and the case store. (The full soak,
`make soak`, also kills the runner at the outbox's risky moments.)

Runs `bench/soak.py` as a subprocess, exactly as CI does (`SOAK_CASES=12 SOAK_SECONDS=240`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("HENPIN_SOAK_TEST") != "1",
        reason="the small soak (about 4 minutes) runs with HENPIN_SOAK_TEST=1; `make soak` runs "
        "the full one",
    ),
]

REPO = Path(__file__).resolve().parent.parent
LAST_LINE = re.compile(
    r"soak: (?P<cases>\d+) cases, (?P<lost>\d+) lost, (?P<duplicated>\d+) duplicated, "
    r"(?P<kept>\d+)/(?P<accepted>\d+) decisions kept"
)


def test_small_soak_loses_nothing_does_nothing_twice_and_keeps_every_decision() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HENPIN_"))}
    if "HENPIN_SPAPI_MODELS" in os.environ:
        env["HENPIN_SPAPI_MODELS"] = os.environ["HENPIN_SPAPI_MODELS"]
    args = ["--cases", "10", "--seconds", "240", "--seed", "3"]
    args += ["--runner-kills", "1", "--server-kills", "1", "--emulator-restarts", "0"]
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "soak.py"), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=330,
    )
    lines = out.stdout.strip().splitlines()
    tail = "\n".join(lines[-45:]) + "\n" + out.stderr[-2000:]
    assert lines, f"no output:\n{out.stderr[-3000:]}"
    figures = LAST_LINE.fullmatch(lines[-1])
    assert figures, f"last line is not the soak summary:\n{tail}"
    assert out.returncode == 0, tail
    assert int(figures["cases"]) == 10
    assert int(figures["lost"]) == 0 and int(figures["duplicated"]) == 0, tail
    assert int(figures["accepted"]) >= 1, tail
    assert figures["kept"] == figures["accepted"], tail
    kills = next(line for line in lines if line.strip().startswith("kills (done/planned)"))
    assert "2/2 " in kills and "'runner': 1" in kills and "'prefect': 1" in kills, tail
    # The runner was killed while it executed flow runs; started again under the same name, it
    # marked each run it left running Crashed (and housekeeping started them again).
    mid_run = next(line for line in lines if line.strip().startswith("kill runner"))
    left = re.search(r"flow runs left running (\d+); (\d+) of them marked Crashed", mid_run)
    assert re.search(r" on executing +\(\d+ proc", mid_run) and left, tail
    assert int(left[1]) >= 1 and left[2] == left[1], tail
