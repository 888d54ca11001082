"""What every part of the benchmark shares: the machine, child processes, memory, the emulator.

Child processes are parts of one supervisor, Henpin's own (henpin/supervisor/): each part is
started as `henpin up` starts it (henpin/supervisor/parts.py), on a socket bound once, dies with
the benchmark and logs under the work folder. Nothing here comes from tests/.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from emulator.demo import order_json
from henpin.supervisor import (
    Limits,
    Part,
    Supervisor,
    emulator_part,
    free_port,
    listening_socket,
    port_of,
    process_tree,
)

__all__ = ["free_port", "order_json", "process_tree"]

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("HENPIN_TEST_DATABASE_URL") or (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
US = "ATVPDKIKX0DER"


def quick() -> bool:
    return os.environ.get("BENCH_QUICK", "") not in ("", "0", "false")


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    import prefect

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "speed_at_start": machine_speed(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "prefect": prefect.__version__,
        "postgresql": _postgres_version(),
        "redis": _redis_version(),
    }


def machine_speed() -> dict[str, float]:
    """Seconds this machine takes for two fixed pieces of work, read at a bench's start and end
    (`machine.speed_at_start`, `machine.speed_at_end`): figures of runs at different hours are
    comparable only where these agree. `python_s`: pure Python in one thread (arithmetic, dicts,
    JSON), what Prefect's server and the runner spend most of their time on. `syscalls_s`: 50,000
    round trips of a byte over a local socket pair, as the processes of a stack talk."""
    import socket

    started = time.perf_counter()
    total = 0
    for i in range(1_000_000):
        total += (i * i) % 7
    record = {"id": 1, "items": [{"sku": f"SKU-{n}", "qty": n} for n in range(50)], "n": total}
    for _ in range(5_000):
        json.loads(json.dumps(record))
    python_s = time.perf_counter() - started
    a, b = socket.socketpair()
    try:
        started = time.perf_counter()
        for _ in range(50_000):
            a.send(b"x")
            b.recv(1)
        syscalls_s = time.perf_counter() - started
    finally:
        a.close()
        b.close()
    return {"python_s": round(python_s, 3), "syscalls_s": round(syscalls_s, 3)}


def _postgres_version() -> str | None:
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(PG_SERVER, connect_args={"connect_timeout": 3})
        with engine.connect() as c:
            version = str(c.execute(text("SHOW server_version")).scalar())
        engine.dispose()
        return version
    except Exception:
        return None


def _redis_version() -> str | None:
    try:
        import redis

        return str(redis.Redis.from_url(REDIS, socket_connect_timeout=2).info()["redis_version"])
    except Exception:
        return None


def postgres_reachable() -> bool:
    return _postgres_version() is not None


def with_database(url: str, name: str, scheme: str | None = None) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((scheme or parts.scheme, parts.netloc, f"/{name}", "", ""))


def free_redis_url() -> str | None:
    """An empty database of the local Redis (claimed for 30 min), or None without Redis or
    without prefect-redis."""
    import importlib.util

    if importlib.util.find_spec("prefect_redis") is None:
        return None
    try:
        import redis

        for db in range(14, 0, -1):
            client = redis.Redis.from_url(f"{REDIS}/{db}", socket_connect_timeout=2)
            if client.dbsize() == 0:
                client.set("henpin-bench-claim", "1", ex=1800)
                return f"{REDIS}/{db}"
    except Exception:
        return None
    return None


def forget_redis(url: str | None) -> None:
    if url:
        with contextlib.suppress(Exception):
            import redis

            redis.Redis.from_url(url).flushdb()


# --- memory ------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return round(total / 1024, 1)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process and its descendants have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return round(total / ticks, 2)


def service_pids(*names: str) -> dict[str, int]:
    """The oldest running process of each program name (`comm`: e.g. PostgreSQL's postmaster,
    "postgres", and "redis-server"), for CPU figures of services the benchmark did not start.
    A name that runs nowhere here is left out."""
    oldest: dict[str, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            comm, rest = (entry / "stat").read_text().rsplit(")", 1)
            name = comm.split("(", 1)[1]
            started = int(rest.split()[19])
            if name in names and (name not in oldest or started < oldest[name][0]):
                oldest[name] = (started, int(entry.name))
    return {name: pid for name, (_, pid) in oldest.items()}


class Sampler:
    """Takes `sample()` every `every` seconds in a thread, from entering the block until
    leaving it (and once more then): `samples` holds (POSIX time, value)."""

    def __init__(self, every: float, name: str) -> None:
        import threading

        self.every = every
        self.samples: list[tuple[float, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def sample(self) -> Any:
        raise NotImplementedError

    def _take(self) -> None:
        self.samples.append((time.time(), self.sample()))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._take()
            self._stop.wait(self.every)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._take()


class RssSampler(Sampler):
    """A process's RSS (with its descendants) every `every` seconds: `samples` holds
    (POSIX time, MB)."""

    def __init__(self, pid: int, every: float = 1.0) -> None:
        super().__init__(every, "rss-sampler")
        self.pid = pid

    def sample(self) -> float:
        return rss_mb(self.pid)

    def at(self, when: float) -> float | None:
        """The last sample taken at or before `when`."""
        before = [mb for t, mb in self.samples if t <= when]
        return before[-1] if before else None


class CpuTrace(Sampler):
    """CPU seconds (`cpu_s`) of named processes every `every` seconds: `samples` holds
    (POSIX time, {name: CPU s}). Each name's pid is looked up at every sample, so a process
    started after the trace (a runner) is followed from its start."""

    def __init__(self, pids: dict[str, Any], every: float = 0.1) -> None:
        super().__init__(every, "cpu-trace")
        self.pids = pids  # name -> a callable returning the pid now, or None

    def sample(self) -> dict[str, float]:
        now: dict[str, float] = {}
        for name, pid_of in self.pids.items():
            pid = pid_of()
            if pid is not None:
                now[name] = cpu_s(pid)
        return now

    def used(self, name: str, start: float, end: float) -> float | None:
        """CPU seconds `name` used between the last samples at or before `start` and `end`."""
        before = [s[name] for t, s in self.samples if t <= start and name in s]
        until = [s[name] for t, s in self.samples if t <= end and name in s]
        return round(until[-1] - before[-1], 3) if before and until else None


# --- child processes ---------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any Prefect or Henpin settings, plus `extra`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HENPIN_", "BENCH_"))
    }
    env.pop("SP_API_DEFAULT_MARKETPLACE", None)
    env.update(extra)
    return env


@dataclass
class Children:
    """Child processes of the benchmark: parts of one supervisor (henpin/supervisor/), each in
    its own process group, dying with the benchmark, logged under `logs`."""

    logs: Path
    supervisor: Supervisor = field(init=False)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor(self.logs, Limits(stop_grace_s=20.0), say=log)

    @property
    def procs(self) -> dict[str, subprocess.Popen[bytes]]:
        return self.supervisor.procs

    def start(self, part: Part, *, wait: bool = True, timeout: float = 120) -> int:
        """Start `part` (and wait until it answers, if it has a health URL); returns its pid."""
        self.supervisor.start(part, wait=wait, timeout=timeout)
        return self.procs[part.name].pid

    def spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start a command of the benchmark's own (no health URL to wait for)."""
        self.start(Part(name, cmd, env), wait=False)
        return self.procs[name]

    def stop(self, name: str) -> None:
        self.supervisor.stop_part(name)

    def stop_all(self) -> None:
        self.supervisor.stop()


def wait_until(what: str, probe: Any, timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


# --- the emulator ------------------------------------------------------------------------------


class Emulator:
    """The SP-API emulator's control API (`/_emulator/`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=f"{url}/_emulator", timeout=60)

    def post_orders(self, orders: list[dict[str, Any]]) -> None:
        for start in range(0, len(orders), 500):
            self.http.post("/orders", json=orders[start : start + 500]).raise_for_status()

    def calls(self) -> list[dict[str, Any]]:
        return list(self.http.get("/calls").json())

    def feeds(self) -> list[dict[str, Any]]:
        return list(self.http.get("/feeds").json())

    def now(self) -> float:
        """Simulated time, as POSIX seconds."""
        now = self.http.get("/clock").json()["now"]
        return datetime.fromisoformat(now.replace("Z", "+00:00")).timestamp()

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self.http.post("/clock/advance", json={"seconds": seconds}).raise_for_status()

    def reset(self) -> None:
        self.http.post("/reset").raise_for_status()


def start_emulator(
    children: Children, name: str, time_scale: float, usage_plans: str = "amazon"
) -> Emulator:
    """The SP-API emulator as `henpin up` starts it, on a socket bound here; `usage_plans`
    "lifted" (P4 engine capacity only) throttles nothing."""
    sock = listening_socket(0)
    children.start(
        emulator_part(sock, clean_env(), time_scale=time_scale, name=name, usage_plans=usage_plans)
    )
    return check_usage_plans(Emulator(f"http://127.0.0.1:{port_of(sock)}"), name, usage_plans)


def check_usage_plans(emulator: Emulator, name: str, usage_plans: str) -> Emulator:
    """`emulator`, once it says it enforces `usage_plans` (its clock answers with them)."""
    plans = emulator.http.get("/clock").json().get("usagePlans")
    if plans != usage_plans:
        raise RuntimeError(f"emulator {name}: usage plans {plans!r}, asked for {usage_plans!r}")
    return emulator


def scan_orders(total: int, requests: int, *, prefix: int, cheap_every: int = 4) -> list[Any]:
    """`total` unshipped US merchant-fulfilled orders, the first `requests` of them with a buyer's
    cancel request: every `cheap_every`-th request is cheap (policy cancels it at once), the
    others are above the high-value line (an operator decides). Created (and last updated) a
    minute ago: after the checkpoint an earlier ingestion run of the same benchmark left."""
    from datetime import timedelta

    created = datetime.now(UTC) - timedelta(minutes=1)
    orders = []
    for i in range(total):
        order_id = f"{prefix:03d}-{1000000 + i // 10_000_000:07d}-{i % 10_000_000:07d}"
        cheap = i % cheap_every == 0
        orders.append(
            order_json(
                order_id,
                price="19.99" if cheap else "480.00",
                cancel_reason="Ordered by mistake" if i < requests else None,
                created=created,
            )
        )
    return orders


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or unset, with None) environment variables for the block."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def forget_process_state() -> None:
    """Forget what this process read from its environment and kept (settings, adapter, policy:
    henpin/context.py's process context), so the next use reads the environment a benchmark
    step has just set."""
    from henpin.context import Context, install

    install(Context())


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
