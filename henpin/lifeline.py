"""Children that die with their parent: the two small programs `henpin up` starts them through.

Standard library only, run as a script (`python -I -S henpin/lifeline.py ...`) so it starts in
a few milliseconds and imports nothing of Henpin or Prefect.

`exec PARENT SIGNAL -- COMMAND...`
    Asks Linux to send SIGNAL to this process when its parent dies (prctl PR_SET_PDEATHSIG,
    kept across exec), checks the parent is still the one given (it may have died before the
    request), then becomes COMMAND (exec: same pid, same process group). Elsewhere it only
    execs; the reaper below is what catches a dead parent there.

`reaper MARKER GRACE`
    Started by the supervisor with a pipe as stdin; the supervisor writes the process group of
    every part it starts, one per line. When the pipe closes, the supervisor has ended, however
    it ended (even `kill -9`): the reaper sends SIGTERM to those groups and to every process
    whose environment carries HENPIN_STACK=MARKER (on Linux, through /proc: this finds the flow
    runs a Prefect worker started in sessions of their own), waits up to GRACE seconds, then
    sends SIGKILL to what is left. It inherits the stack's lock file (flock), so another
    `henpin up` on the same folder waits until the sweep is done.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
MARKER_VARIABLE = "HENPIN_STACK"


def _set_parent_death_signal(sig: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def run_exec(parent: int, sig: int, command: list[str]) -> None:
    _set_parent_death_signal(sig)
    if os.getppid() != parent:  # the parent died before the request took effect
        raise SystemExit(f"lifeline: parent {parent} is gone; not starting {command[0]}")
    os.execvp(command[0], command)


def marked_processes(marker: str) -> list[int]:
    """Every live process whose environment has HENPIN_STACK=marker (Linux; a zombie's
    environment reads empty)."""
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    found = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if needle not in f.read().split(b"\0"):
                        continue
                found.append(int(entry))
            except OSError:
                continue
    return found


def signal_stack(groups: set[int], marker: str, sig: int) -> bool:
    """Send `sig` to the groups and the marked processes; True while any of them is alive."""
    alive = False
    for pgid in groups:
        try:
            os.killpg(pgid, sig)
            alive = True
        except (ProcessLookupError, PermissionError):
            continue
    for pid in marked_processes(marker):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
            alive = True
    return alive


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def run_reaper(marker: str, grace: float) -> None:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # only the pipe closing ends the reaper
    groups: set[int] = set()
    for line in sys.stdin:
        word = line.strip()
        if word.lstrip("+-").isdigit():
            (groups.discard if word.startswith("-") else groups.add)(int(word.lstrip("+-")))
    # The supervisor is gone (or done): nothing of the stack may outlive it.
    if not signal_stack(groups, marker, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if not any(_group_alive(g) for g in groups) and not marked_processes(marker):
            return
    signal_stack(groups, marker, signal.SIGKILL)


def main(argv: list[str]) -> None:
    if len(argv) >= 4 and argv[0] == "exec" and argv[3] == "--" and argv[4:]:
        run_exec(int(argv[1]), int(argv[2]), argv[4:])
    elif len(argv) == 3 and argv[0] == "reaper":
        run_reaper(argv[1], float(argv[2]))
    else:
        raise SystemExit(
            "usage: lifeline.py exec PARENT SIGNAL -- COMMAND... | reaper MARKER GRACE"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
