"""Operations in one place (issue 12): every stack (`henpin up`, its production layout, the
benchmarks, the tests' Prefect server) starts its parts with one supervisor and one set of part
recipes (henpin/supervisor/), and bench/ imports nothing from tests/.

Unit tests: they read the source and build objects, and start nothing.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import henpin.scale
import henpin.stack
from henpin import supervisor
from henpin.scale import ScaledStack
from henpin.settings import Settings
from henpin.stack import Stack
from henpin.supervisor import parts
from tests import support

ROOT = Path(__file__).resolve().parent.parent
BENCH = sorted((ROOT / "bench").glob("*.py"))

#: How each part is started, in words only its recipe (henpin/supervisor/parts.py) may use.
PART_COMMANDS = {
    "the Prefect server": ('"henpin.prefect_serve"', '"server", "start"'),
    "the emulator": ('"henpin.cli", "emulator"',),
    "the mail catcher": ('"mailcatcher"',),
    "the runner": ('"henpin.cli", "runner"',),
    "a worker of the production layout": ('"--no-housekeeping", "--no-deploy"',),
    "the housekeeper": ('"henpin.scale", "housekeeper"',),
    "the inbox": ('"streamlit", "run"',),
}
STARTERS = [
    ROOT / "henpin" / "stack.py",
    ROOT / "henpin" / "scale.py",
    ROOT / "tests" / "support.py",
    ROOT / "tests" / "conftest.py",
    *BENCH,
]


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_bench_imports_nothing_from_tests() -> None:
    assert BENCH, "bench/ has no Python files?"
    wrong = {
        path.name: sorted(
            m for m in imported_modules(path) if m == "tests" or m.startswith("tests.")
        )
        for path in BENCH
    }
    assert {name: mods for name, mods in wrong.items() if mods} == {}


@pytest.mark.parametrize("part", sorted(PART_COMMANDS))
def test_each_part_is_started_in_one_place(part: str) -> None:
    """No stack spells out a part's command line: it asks henpin/supervisor/parts.py."""
    words = PART_COMMANDS[part]
    recipe = (ROOT / "henpin" / "supervisor" / "parts.py").read_text()
    assert any(w in recipe for w in words), f"{part}: no recipe in henpin/supervisor/parts.py"
    elsewhere = [
        str(path.relative_to(ROOT))
        for path in STARTERS
        if any(w in path.read_text() for w in words)
    ]
    assert elsewhere == []


def test_stack_and_scale_share_the_supervisor_and_its_parts(tmp_path: Path) -> None:
    default = Stack(home=tmp_path / "up", settings=Settings(home=tmp_path / "up"))
    scaled = ScaledStack(
        home=tmp_path / "scaled",
        settings=Settings(home=tmp_path / "scaled"),
        database_url="postgresql+psycopg://henpin@127.0.0.1/henpin",
    )
    assert type(default.supervisor) is type(scaled.supervisor) is supervisor.Supervisor
    for name in ("prefect_server_part", "emulator_part", "inbox_part", "wait_until_up"):
        assert getattr(henpin.stack, name, None) in (None, getattr(supervisor, name))
        assert getattr(henpin.scale, name, None) in (None, getattr(supervisor, name))
    assert henpin.stack.prefect_server_part is henpin.scale.prefect_server_part
    assert henpin.stack.emulator_part is henpin.scale.emulator_part is parts.emulator_part
    assert henpin.stack.inbox_part is henpin.scale.inbox_part is parts.inbox_part


def test_the_tests_prefect_server_is_the_supervisors() -> None:
    assert support.PrefectServer is parts.PrefectServer


def test_a_part_recipe_hands_over_its_socket_and_names_its_health(tmp_path: Path) -> None:
    """A server part serves on the socket its starter bound (`--fd N`, passed to the child)."""
    import socket

    with socket.socket() as sock:  # bound, not listening: a unit test starts no server
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = parts.prefect_server_part(sock, {})
        emulator = parts.emulator_part(sock, {}, state=tmp_path / "state.json", time_scale=60)
        assert server.sockets == (sock,) and emulator.sockets == (sock,)
        assert ["--fd", str(sock.fileno())] == server.command[-2:]
    assert server.health_url == f"http://127.0.0.1:{port}/api/health"
    assert emulator.health_url == f"http://127.0.0.1:{port}/_emulator/clock"
    assert parts.runner_part({}).needs_prefect
    assert parts.runner_part({}, limit=3).command[-2:] == ["--limit", "3"]


def test_the_prefect_server_writes_task_runs_and_events_in_batches_unless_told_otherwise() -> None:
    """The Prefect server Henpin starts records task runs and persists events 200 at a time,
    flushed every second (parts.SERVER_WRITES; Prefect's default recorder writes one per
    transaction and falls behind); an operator's own setting is kept."""
    recorder = "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"
    env = parts.prefect_server_part(4200, {"HENPIN_HOME": "/x"}).env
    assert env[recorder] == env["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE"] == "200"
    assert env["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL"] == "1"
    assert env["HENPIN_HOME"] == "/x"
    assert parts.prefect_server_part(4200, {recorder: "10"}).env[recorder] == "10"


def test_the_systemd_prefect_server_writes_as_the_server_henpin_starts() -> None:
    """deploy/systemd/prefect-server.env.example sets every parts.SERVER_WRITES setting to the
    same value: the production layout's server is not left on Prefect's defaults."""
    example = (ROOT / "deploy" / "systemd" / "prefect-server.env.example").read_text()
    lines = [line for line in example.splitlines() if line and not line.startswith("#")]
    values = dict(line.split("=", 1) for line in lines)
    assert {k: values.get(k) for k in parts.SERVER_WRITES} == parts.SERVER_WRITES


def test_a_resident_executor_allocates_with_malloc_unless_its_environment_says_otherwise(
    tmp_path: Path,
) -> None:
    """The runner and the workers run with PYTHONMALLOC=malloc; malloc is jemalloc where the
    machine has it (HENPIN_RUNNER_ALLOCATOR=auto), else glibc's with two arenas that
    malloc_trim hands back; an operator's own setting in the environment they start from is
    kept, and a choice that cannot be had is refused by name. Other parts are left as they are."""
    found = next((p for p in parts.JEMALLOC_PATHS if Path(p).is_file()), None)
    for part in (parts.runner_part({}), parts.worker_part("henpin-worker-1", 4, {})):
        assert part.env["PYTHONMALLOC"] == "malloc"
        if found:
            assert part.env["LD_PRELOAD"] == found and "MALLOC_ARENA_MAX" not in part.env
            assert part.env["MALLOC_CONF"] == "background_thread:true,narenas:1"
        else:
            assert part.env["MALLOC_ARENA_MAX"] == "2" and "LD_PRELOAD" not in part.env
    glibc = parts.runner_part({"HENPIN_RUNNER_ALLOCATOR": "glibc"}).env
    assert glibc["MALLOC_ARENA_MAX"] == "2" and "LD_PRELOAD" not in glibc
    own = parts.runner_part({"PYTHONMALLOC": "pymalloc", "HENPIN_HOME": "/x"})
    assert own.env["PYTHONMALLOC"] == "pymalloc" and own.env["HENPIN_HOME"] == "/x"
    assert "PYTHONMALLOC" not in parts.housekeeper_part({}).env
    # Where jemalloc is not: auto falls back to glibc's malloc, jemalloc refuses by name.
    library = tmp_path / "libjemalloc.so.2"
    assert parts.resident_allocator("auto", (str(library),)) == parts.RESIDENT_ALLOCATOR
    with pytest.raises(ValueError, match="HENPIN_RUNNER_ALLOCATOR=jemalloc, but no lib"):
        parts.resident_allocator("jemalloc", (str(library),))
    library.write_bytes(b"")
    assert parts.resident_allocator("jemalloc", (str(library),))["LD_PRELOAD"] == str(library)
    with pytest.raises(ValueError, match="HENPIN_RUNNER_ALLOCATOR='tcmalloc': choose one of"):
        parts.runner_part({"HENPIN_RUNNER_ALLOCATOR": "tcmalloc"})
    choices = Settings.model_fields["runner_allocator"].annotation
    assert typing.get_args(choices) == parts.ALLOCATOR_CHOICES
    # The systemd worker unit sets glibc's, before the environment file that may override it.
    unit = (ROOT / "deploy" / "systemd" / "henpin-worker@.service").read_text()
    settings = " ".join(f"{k}={v}" for k, v in parts.RESIDENT_ALLOCATOR.items())
    assert unit.index(f"Environment={settings}\n") < unit.index("EnvironmentFile=")
    jemalloc = " ".join(
        f"{k}={v}" for k, v in parts.JEMALLOC_ALLOCATOR.items() if k != "PYTHONMALLOC"
    )
    assert f"#Environment=LD_PRELOAD={parts.JEMALLOC_PATHS[0]} {jemalloc}\n" in unit


@pytest.mark.e2e  # starts a Python process
@pytest.mark.skipif(
    not any(Path(p).is_file() for p in parts.JEMALLOC_PATHS), reason="no jemalloc here"
)
def test_a_resident_executor_started_with_its_allocator_runs_on_jemalloc() -> None:
    """The environment the supervisor gives a runner really puts jemalloc under its Python:
    the process says so (henpin.resident.allocator_in_use, which the runner logs at its
    start) and its own memory map holds the library; it took the MALLOC_CONF (one arena: jemalloc
    ignores a setting it cannot read, with a line on stderr); glibc's malloc_trim is then not
    called."""
    probe = (
        "import henpin.resident as r, pathlib;"
        "maps = pathlib.Path('/proc/self/maps').read_text();"
        "print(r.allocator_in_use(), 'libjemalloc' in maps, r._malloc_trim() is None,"
        " r.jemalloc_arenas())"
    )
    plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env=parts.resident_env({**plain, "HENPIN_RUNNER_ALLOCATOR": "jemalloc"}),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["jemalloc", "True", "True", "1"]
    assert "<jemalloc>" not in out.stderr
    out = subprocess.run(
        [sys.executable, "-c", probe], env=plain, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["glibc", "False", "False", "None"]


def test_a_worker_of_the_production_layout_is_a_resident_executor(tmp_path: Path) -> None:
    """The scaled layout's workers are `henpin runner` on the henpin-resident pool, without the
    housekeeping (its own part) or the deploying (`python -m henpin.scale deploy`), named so
    that a worker started again finds the runs it left running; exit 75 means "start again"."""
    import henpin.resident
    from henpin.supervisor import RECYCLE_EXIT

    worker = parts.worker_part("henpin-worker-2", 16, {})
    assert worker.command[1:] == [
        *("-m", "henpin.cli", "runner", "--name", "henpin-worker-2", "--limit", "16"),
        *("--no-housekeeping", "--no-deploy"),
    ]
    assert worker.needs_prefect and worker.name == "henpin-worker-2"
    assert RECYCLE_EXIT == henpin.resident.RECYCLE_EXIT
    assert henpin.scale.POOL == henpin.resident.POOL
    assert not hasattr(henpin.scale, "deploy_to_work_pool")  # one copy: henpin.runner's
    scaled = ScaledStack(
        home=tmp_path,
        settings=Settings(home=tmp_path),
        database_url="postgresql+psycopg://henpin@127.0.0.1/henpin",
    )
    assert scaled.worker_limit == Settings.model_fields["runner_limit"].default
