"""Operations in one place: one supervisor starts, watches and stops every part of Henpin's
stack, for `henpin up` (henpin/stack.py), its production layout (henpin/scale.py), the
benchmarks (bench/) and the tests' Prefect server.

- `core`: the `Supervisor` (children die with it, restarts with backoff, bounded stops, rotated
  logs) and a `Part` (a command, its environment, its health URL, the sockets it is handed).
- `ports`: sockets bound once and handed over; waits until a part answers.
- `parts`: how each part is started (Prefect server, emulator, mail catcher, runner, the
  production layout's resident workers, housekeeper, inbox) and Prefect's settings for a stack; `PrefectServer`, restartable.
"""

from henpin.supervisor.core import (
    LIFELINE,
    MAX_BACKOFF_S,
    REAPER_GRACE_S,
    RECYCLE_EXIT,
    ROOT,
    Limits,
    Part,
    RotatingLog,
    Supervisor,
    process_tree,
    with_lifeline,
)
from henpin.supervisor.parts import (
    PrefectServer,
    emulator_part,
    housekeeper_part,
    inbox_part,
    mail_part,
    prefect_env,
    prefect_server_part,
    runner_part,
    worker_part,
)
from henpin.supervisor.ports import (
    free_port,
    listening_socket,
    port_of,
    preferred_socket,
    wait_until_up,
)

__all__ = [
    "LIFELINE",
    "MAX_BACKOFF_S",
    "REAPER_GRACE_S",
    "RECYCLE_EXIT",
    "ROOT",
    "Limits",
    "Part",
    "PrefectServer",
    "RotatingLog",
    "Supervisor",
    "emulator_part",
    "free_port",
    "housekeeper_part",
    "inbox_part",
    "listening_socket",
    "mail_part",
    "port_of",
    "prefect_env",
    "prefect_server_part",
    "preferred_socket",
    "process_tree",
    "runner_part",
    "wait_until_up",
    "with_lifeline",
    "worker_part",
]
