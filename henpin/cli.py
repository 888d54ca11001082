"""The `henpin` command. `--json` outputs are a contract used by scripts: extend, never change."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from henpin.settings import Settings

if TYPE_CHECKING:
    from henpin.stack import StackLock


def _home(args: argparse.Namespace) -> Path:
    home = getattr(args, "home", None) or os.environ.get("HENPIN_HOME") or ".henpin"
    os.environ["HENPIN_HOME"] = str(home)
    return Path(home)


def _settings(args: argparse.Namespace) -> Settings:
    _home(args)
    return Settings()


def _use_stack_prefect(home: Path) -> bool:
    """Point this process at the Prefect API of the stack `henpin up` runs in this home.

    Must run before Prefect is imported (it reads its settings at import). False when no
    stack is running there and PREFECT_API_URL is not set either.
    """
    from henpin.prefect_auth import client_auth_env

    # The production layout locks its Prefect API: send its auth string, kept in the home.
    for name, value in client_auth_env(home).items():
        os.environ.setdefault(name, value)
    if os.environ.get("PREFECT_API_URL"):
        return True
    from henpin.stack import prefect_env, read_status

    status = read_status(home)
    api = status.get("prefect_api")
    os.environ.update(prefect_env(home, api))
    if status.get("emulator") and not os.environ.get("HENPIN_EMULATOR_URL"):
        os.environ["HENPIN_EMULATOR_URL"] = status["emulator"]
    return bool(status["ready"])


def _print_json(data: Any) -> None:
    def default(o: Any) -> Any:
        if isinstance(o, BaseModel):
            return o.model_dump(mode="json")
        return str(o)

    print(json.dumps(data, default=default, indent=2, ensure_ascii=False))


def cmd_up(args: argparse.Namespace) -> int:
    from henpin.stack import StackLock, StackRunning

    home = _home(args)
    lock = StackLock(home)
    try:  # first: a second `henpin up` must not touch the running stack's folder
        lock.acquire()
    except StackRunning as running:
        print(f"henpin up: nothing was started: {running}", file=sys.stderr)
        return 3
    try:
        return _up(args, home, lock)
    finally:
        lock.release()


def _up(args: argparse.Namespace, home: Path, lock: StackLock) -> int:
    from henpin.policy import PolicyError, load_policy
    from henpin.stack import DEMO_OPERATOR, Stack, demo_operator_password
    from henpin.supervisor.parts import resident_allocator

    policies = Path(args.policies or os.environ.get("HENPIN_POLICIES") or "policies.yaml")
    os.environ["HENPIN_POLICIES"] = str(policies.resolve())
    try:
        load_policy(policies)
    except PolicyError as exc:
        print(
            f"henpin up: the policy file is not valid, nothing was started:\n{exc}", file=sys.stderr
        )
        return 2
    settings = Settings()
    if (missing := _check_region_logins(settings, home)) is not None:
        return missing
    try:  # HENPIN_RUNNER_ALLOCATOR=jemalloc on a machine without jemalloc
        resident_allocator(settings.runner_allocator)
    except ValueError as exc:
        print(f"henpin up: nothing was started: {exc}", file=sys.stderr)
        return 2
    if args.scale:
        return _up_scaled(args, home, policies, lock)
    stack = Stack(home=home, settings=settings, lock=lock)
    os.environ.update(stack.plan())  # before Prefect is imported: it reads settings at import
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    from henpin.accounts import add_demo_admin

    try:
        print(
            "Starting Henpin" + (" in demo mode (SP-API emulator)" if settings.demo_mode else ""),
            "...",
        )
        stack.start(demo_data=not args.no_demo_data, policies=policies)
        login = None
        if settings.demo_mode:
            password = demo_operator_password(home)
            if add_demo_admin(settings.store_url, DEMO_OPERATOR, password):
                login = f"{DEMO_OPERATOR} / {password}"
            else:  # made on an earlier start and left as it is: an admin may have changed it
                login = (
                    f"{DEMO_OPERATOR} (its first password is in {home / 'demo-operator-password'})"
                )
        _kick_first_poll()
        for problem in stack.open_demo_message_cases():
            print(f"henpin up: the demo buyer's message case was not opened: {problem}")
        print()
        print(f"  Inbox:      {stack.urls['inbox']}")
        print(f"  Prefect UI: {stack.urls['prefect_ui']}")
        if stack.urls.get("emulator"):
            print(
                f"  Emulator:   {stack.urls['emulator']}  (demo SP-API; control API under /_emulator/)"
            )
        if login:
            print(f"  Log in as:  {login}")
        print(f"  Data:       {home.resolve()}   Logs: {home.resolve() / 'logs'}")
        print("\nDemo cases appear within a minute. Press Ctrl-C to stop.", flush=True)
        print(f"henpin up: {stack.supervise()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping Henpin ...", flush=True)
        return 0
    finally:
        _stop_undisturbed(stack)


def _stop_undisturbed(stack: Any) -> None:
    """Stop the stack; a second Ctrl-C or SIGTERM meanwhile does not cut the stop short (it is
    bounded: stop_grace_s, then SIGKILL)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stack.stop()


def _check_region_logins(settings: Settings, home: Path) -> int | None:
    """Every watched marketplace's region needs its Amazon login (real mode): say which are
    missing and what to set, and stop (2). Each region starts "unchecked" in `henpin status`."""
    from henpin.regions import RegionAuthLog

    missing = settings.missing_credentials_message()
    if missing:
        print(f"henpin: nothing was started.\n{missing}", file=sys.stderr)
        return 2
    RegionAuthLog(home).clear()
    return None


def _up_scaled(args: argparse.Namespace, home: Path, policies: Path, lock: StackLock) -> int:
    """The production layout on one machine: Prefect on PostgreSQL (+ Redis), process workers
    on a work pool, the case store on PostgreSQL, under the same supervisor as the default
    layout. See docs/scaling.md."""
    from henpin.scale import ScaledStack

    database_url = os.environ.get("HENPIN_DATABASE_URL") or args.database_url
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    print(
        f"Starting Henpin's scaled layout ({args.workers} workers, case store {database_url}) ..."
    )
    stack = ScaledStack(
        home=home,
        settings=Settings(home=home, database_url=database_url),
        database_url=database_url,
        redis_url=args.redis_url,
        workers=args.workers,
        lock=lock,
    )
    stack.plan()
    try:
        stack.start(demo_data=not args.no_demo_data, policies=policies)
        for name, url in sorted(stack.urls.items()):
            if url:
                print(f"  {name}: {url}")
        from henpin.prefect_auth import AUTH_FILE, SERVER_SETTING

        kept = f"{SERVER_SETTING}" if os.environ.get(SERVER_SETTING) else f"{home / AUTH_FILE}"
        print(f"  The Prefect UI and API are locked: sign in with the auth string in {kept}.")
        print("Press Ctrl-C to stop.", flush=True)
        print(f"henpin up: {stack.supervise()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping Henpin ...", flush=True)
        return 0
    finally:
        _stop_undisturbed(stack)


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _kick_first_poll() -> None:
    """Run ingestion once now instead of waiting for its schedule (once the runner serves it)."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    for _ in range(120):
        try:
            with get_client(sync_client=True) as client:
                client.read_deployment_by_name("ingest/henpin")
            run_deployment("ingest/henpin", timeout=0, as_subflow=False)
            return
        except Exception:
            time.sleep(0.5)


def cmd_status(args: argparse.Namespace) -> int:
    from henpin.regions import region_status
    from henpin.stack import read_status

    home = _home(args)
    status = read_status(home)
    try:
        status["regions"] = region_status(Settings(), home)
    except ValueError as exc:  # an unknown id in HENPIN_MARKETPLACES
        status["regions"] = {"error": str(exc)}
    if args.json:
        _print_json(status)
    else:
        print("ready" if status["ready"] else "not running")
        for k in ("inbox", "prefect_ui", "prefect_api", "emulator"):
            if status.get(k):
                print(f"  {k}: {status[k]}")
        if holder := status.get("lock"):
            print(f"  held by: henpin up, pid {holder['pid']}, since {holder.get('since')}")
        if restarts := {k: v for k, v in status.get("restarts", {}).items() if v}:
            print("  restarts: " + ", ".join(f"{k} {v}" for k, v in sorted(restarts.items())))
        for region, entry in status["regions"].items():
            if isinstance(entry, dict):
                print(f"  {region}: {entry['auth']} ({', '.join(entry['marketplaces'])})")
    return 0 if status["ready"] else 1


def cmd_cases_list(args: argparse.Namespace) -> int:
    from henpin.app.cases import list_cases

    settings = _settings(args)
    store_url = _migrate(settings)
    cases = list_cases(store_url, state=args.state)
    if args.json:
        _print_json([c.model_dump(mode="json") for c in cases])
    else:
        for c in cases:
            extra = f"until {c.deadline:%Y-%m-%d %H:%M}" if c.deadline else (c.outcome or "")
            print(
                f"{c.id:>5}  {c.type:<18} {c.order_id:<20} {c.marketplace or c.marketplace_id:<4} "
                f"{c.state:<8} {extra}"
            )
    return 0


def cmd_cases_show(args: argparse.Namespace) -> int:
    from henpin.app.cases import show_case

    settings = _settings(args)
    store_url = _migrate(settings)
    case = show_case(store_url, args.id)
    if case is None:
        print(f"henpin: there is no case {args.id}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(case.model_dump(mode="json"))
    else:
        print(
            f"Case {case.id}: {case.type} {case.order_id} ({case.marketplace}) — {case.state}"
            + (f", {case.outcome}" if case.outcome else "")
        )
        for e in case.timeline:
            print(f"  {e.at:%Y-%m-%d %H:%M:%S}  {e.message}")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    """Answer a waiting case through the inbox's door: the name must be an active operator or
    admin, a case someone else claimed needs --over-claim, and the audit log records it."""
    settings = _settings(args)
    _use_stack_prefect(_home(args))  # if it is down, the decision is kept and applied later
    from henpin.app.decide import DecisionCode, decide_as

    fields = dict(_field(f) for f in args.field or [])
    outcome = decide_as(
        settings.store_url,
        args.id,
        choice=args.choice,
        operator=args.operator,
        note=args.note or "",
        fields=fields,
        over_claim=args.over_claim,
        where="cli",
        source="cli",
    )
    decided_first = outcome.code == DecisionCode.ALREADY_DECIDED
    message = outcome.message or f"Case {args.id}: {outcome.code.value}."
    if args.json:
        answer: dict[str, Any] = {"case_id": args.id, "accepted": outcome.accepted}
        if outcome.accepted or decided_first:  # the fields `henpin decide --json` always had
            answer |= {
                "choice": outcome.params.get("winner", outcome.choice),
                "operator": outcome.params.get("who", args.operator),
                "resumed": outcome.code == DecisionCode.RESUMED,
                "message": message,
            }
        else:
            answer["error"] = message
        answer["result"] = outcome.code.value
        if outcome.params.get("claimed_by"):
            answer["claimed_by"] = outcome.params["claimed_by"]
        _print_json(answer)
    elif outcome.accepted:
        print(message)
    else:
        print(f"henpin: {message}", file=sys.stderr)
    return 0 if outcome.accepted else 1


def cmd_cases_settle_message(args: argparse.Namespace) -> int:
    from henpin.app.messages import SettleCode, settle_message

    settings = _settings(args)
    store_url = _migrate(settings)
    code = settle_message(
        store_url,
        args.id,
        args.key,
        was_sent=args.was_sent,
        operator=args.operator,
        where="cli",
    )
    settled = code in (SettleCode.MARKED_SENT, SettleCode.MARKED_NOT_SENT)
    words = {
        SettleCode.MARKED_SENT: "marked as sent; nothing more goes out",
        SettleCode.MARKED_NOT_SENT: "marked as not sent; it goes out on the next round",
        SettleCode.NOT_UNCERTAIN: "not an uncertain message of this case (settled already?)",
        SettleCode.NOT_ALLOWED: f"{args.operator} is not an active operator or admin",
    }
    if args.json:
        _print_json({"case_id": args.id, "key": args.key, "settled": settled, "result": code.value})
    else:
        print(
            f"case {args.id}, {args.key}: {words[code]}", file=sys.stdout if settled else sys.stderr
        )
    return 0 if settled else 1


def _field(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise SystemExit(f"henpin decide: --field takes NAME=VALUE (got {text!r})")
    return name.strip(), value.strip()


def _open_case_command(args: argparse.Namespace, open_it: Callable[[str], Any]) -> int:
    """Open a case by hand (`open_it(store_url)`, a henpin.app function) and print it."""
    settings = _settings(args)
    if not _use_stack_prefect(_home(args)):
        print(
            "henpin: Henpin is not running in this home; start it with `henpin up`.",
            file=sys.stderr,
        )
        return 1
    from henpin.app.cases import CaseNotOpened

    try:
        case = open_it(settings.store_url)
    except CaseNotOpened as exc:
        print(f"henpin: {exc}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(case.model_dump(mode="json"))
    else:
        print(f"Case {case.id} opened: {case.type} {case.order_id}")
    return 0


def cmd_cases_open_message(args: argparse.Namespace) -> int:
    def open_it(store_url: str) -> Any:
        from henpin.app.messages import open_cancel_by_message

        return open_cancel_by_message(
            store_url, args.order_id, buyer_message=args.message, operator=args.operator
        )

    return _open_case_command(args, open_it)


def cmd_cases_open_parcel(args: argparse.Namespace) -> int:
    def open_it(store_url: str) -> Any:
        from henpin.app.parcels import open_parcel_case

        return open_parcel_case(
            store_url,
            args.order_id,
            kind=args.kind,
            operator=args.operator,
            note=args.note,
            where="cli",
        )

    return _open_case_command(args, open_it)


def cmd_poll(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not _use_stack_prefect(_home(args)):
        print(
            "henpin poll: Henpin is not running in this home; start it with `henpin up`.",
            file=sys.stderr,
        )
        return 1
    _migrate(settings)
    from henpin.app.ingest import poll_amazon

    opened = poll_amazon()
    new = [o for o in opened if o.new]
    if args.json:
        _print_json({"found": len(opened), "opened": [o.model_dump() for o in new]})
    else:
        print(f"{len(opened)} buyer cancel request(s) found; {len(new)} new case(s) opened")
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    from henpin.policy import PolicyError, check_policy_file

    path = Path(args.file or os.environ.get("HENPIN_POLICIES") or "policies.yaml")
    try:
        print(check_policy_file(path))
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    _warn_value_currencies(args, path)
    return 0


def _warn_value_currencies(args: argparse.Namespace, path: Path) -> None:
    """Warnings (not errors): value conditions lacking a watched marketplace's currency."""
    from henpin.policy import load_policy
    from henpin.policy.currency_check import value_condition_warnings

    for line in value_condition_warnings(load_policy(path), path, _settings(args).marketplaces):
        print(line, file=sys.stderr)


def cmd_policy_replay(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from henpin.app.replay import replay
    from henpin.policy import PolicyError, load_policy

    settings = _settings(args)
    store_url = _migrate(settings)
    try:
        policy = load_policy(Path(args.file))
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    since = datetime.fromisoformat(args.since).replace(tzinfo=UTC) if args.since else None
    report = replay(store_url, policy, since=since)
    if args.json:
        _print_json(report.model_dump(mode="json"))
        return 0
    for r in report.rows:
        if r.changed:
            print(
                f"{r.case_id:>5} {r.type:<15} {r.order_id:<20} {r.was_action}/{r.was_rule} -> "
                f"{r.would_action}/{r.would_rule}: {r.would_reason}"
            )
    print(
        f"{report.changed} of {report.cases} case(s) would be decided differently under "
        f"{report.policy_version}; to an operator: {report.to_operator_before} -> "
        f"{report.to_operator_after}; automatic: {report.automatic_before} -> "
        f"{report.automatic_after}; order value of changed cases: "
        + (", ".join(f"{v} {c}" for c, v in report.value_changed.items()) or "0")
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """The CSV of cases or refunds for accounting, through the inbox's own export (audited)."""
    from datetime import date

    from henpin.accounts import Actor
    from henpin.app.exports import ExportRefused, Period, export

    settings = _settings(args)
    try:
        period = Period(date.fromisoformat(args.first), date.fromisoformat(args.last))
    except ValueError as exc:
        print(f"henpin export: {exc}; give dates as YYYY-MM-DD", file=sys.stderr)
        return 2
    store_url = _migrate(settings)
    actor = Actor.command_line()
    try:
        made = export(
            store_url,
            args.kind,
            period,
            args.marketplace,
            by=actor.name,
            where=actor.where,
            check_role=False,
        )
    except ExportRefused as refused:
        print(f"henpin export: {refused}; nothing written", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).write_text(made.text, encoding="utf-8", newline="")
        print(f"{made.rows} {made.kind.value} row(s) written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(made.text)
    return 0


def cmd_emulator(args: argparse.Namespace) -> int:
    from emulator.server import main as emulator_main

    argv = ["--host", args.host, "--port", str(args.port), "--time-scale", str(args.time_scale)]
    if args.fd is not None:
        argv += ["--fd", str(args.fd)]
    if args.state_file:
        argv += ["--state-file", args.state_file]
    if args.seed_demo:
        argv += ["--seed-demo"]
    if args.usage_plans != "amazon":
        argv += ["--usage-plans", args.usage_plans]
    emulator_main(argv)
    return 0


def cmd_mailcatcher(args: argparse.Namespace) -> int:
    from henpin.mailcatcher import MailCatcher

    sock = socket.socket(fileno=args.fd) if args.fd is not None else None
    with MailCatcher(host=args.host, port=args.port, folder=Path(args.folder), sock=sock):
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def cmd_runner(args: argparse.Namespace) -> int:
    from henpin.runner import serve_forever, serve_resident

    settings = _settings(args)
    if missing := settings.missing_credentials_message():
        print(f"henpin runner: {missing}", file=sys.stderr)
        return 2
    _migrate(settings)
    if args.process_per_run:
        serve_forever(settings, limit=args.limit or settings.runner_limit)
    else:
        serve_resident(
            settings,
            limit=args.limit,
            name=args.name,
            housekeeping=not args.no_housekeeping,
            deploy=not args.no_deploy,
        )
    return 0


PASSWORD_ON_ARGV = (
    "--password is no longer taken: a password on the command line shows in the process list "
    "and the shell history. Pipe it in with --password-stdin (e.g. `printf '%s\\n' \"$PW\" | "
    "henpin operator add NAME --password-stdin`), or leave it out to be asked for it (or, "
    "without a terminal, to get a random one printed once)."
)
MIN_PASSWORD = 12


def _operator_password(args: argparse.Namespace, command: str) -> str | None:
    """The password for `henpin operator add|reset-password`: from stdin (--password-stdin), else
    asked at the terminal (twice), else None (a random one, printed once). Never from argv."""
    import getpass

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise _OperatorCommandError(f"{command}: --password-stdin read no password")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password (empty: a random one, printed once): ")
        if password and getpass.getpass("The same password again: ") != password:
            raise _OperatorCommandError(f"{command}: the two passwords differ; nothing changed")
    else:
        return None
    if password and len(password) < MIN_PASSWORD:
        raise _OperatorCommandError(
            f"{command}: a password has at least {MIN_PASSWORD} characters; nothing changed"
        )
    return password or None


class _OperatorCommandError(Exception):
    """A `henpin operator` command refused before touching the store (message for stderr)."""


def _operator_command(
    args: argparse.Namespace, command: str, change: Callable[[str, Any], str]
) -> int:
    """Run one `henpin operator` change as the person at this command line (audited with
    source `cli`); a refusal is worded on stderr, audited too, and exits 1."""
    from henpin.accounts import AccountRefused, Actor, AuditAction, audit

    if getattr(args, "password", None) is not None:
        print(f"henpin {command}: {PASSWORD_ON_ARGV}", file=sys.stderr)
        return 2
    settings = _settings(args)
    actor = Actor.command_line()
    try:
        _migrate(settings)
        print(change(settings.store_url, actor))
    except _OperatorCommandError as refused:
        print(f"henpin {refused}", file=sys.stderr)
        return 1
    except AccountRefused as refused:
        audit(
            settings.store_url,
            actor.name,
            AuditAction.OPERATOR_CHANGE_REFUSED,
            # as typed, escaped: a refused name may hold control characters
            target=str(getattr(args, "name", "")).encode("unicode_escape").decode()[:120],
            where=actor.where,
            detail={"command": command, "code": refused.code},
        )
        print(f"henpin {command}: {refused}; nothing changed", file=sys.stderr)
        return 1
    return 0


def cmd_operator_add(args: argparse.Namespace) -> int:
    from henpin.accounts import create_operator

    def add(store_url: str, actor: Any) -> str:
        password = _operator_password(args, "operator add")
        made = create_operator(store_url, args.name, role=args.role, by=actor, password=password)
        if password:
            return f"Operator {args.name} ({args.role}) added."
        return f"Operator {args.name} ({args.role}) added; password (shown once): {made}"

    return _operator_command(args, "operator add", add)


def cmd_operator_set_role(args: argparse.Namespace) -> int:
    from henpin.accounts import set_role

    def change(store_url: str, actor: Any) -> str:
        set_role(store_url, args.name, args.role, by=actor)
        return f"{args.name} is now {args.role}."

    return _operator_command(args, "operator set-role", change)


def cmd_operator_reset_password(args: argparse.Namespace) -> int:
    from henpin.accounts import reset_password

    def change(store_url: str, actor: Any) -> str:
        password = _operator_password(args, "operator reset-password")
        reset = reset_password(store_url, args.name, by=actor, password=password)
        done = f"New password for {args.name}; their open sessions have ended and locks lifted"
        return f"{done}." if password else f"{done}; password (shown once): {reset.password}"

    return _operator_command(args, "operator reset-password", change)


def _migrate(settings: Settings) -> str:
    """The command's start-up: the case store brought up to date; its URL."""
    from henpin.app.startup import open_case_store

    return open_case_store(settings)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="henpin",
        description="Henpin (返品): an Amazon seller's cancellations and returns as Prefect "
        "workflows with human approval.",
    )
    p.add_argument("--home", help="data folder (default .henpin, or $HENPIN_HOME)")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser(
        "up",
        help="start the whole stack (demo mode without Amazon credentials); one per data "
        "folder: exits 3, naming the running stack, if the folder has one",
    )
    up.add_argument(
        "--home", help="data folder (default .henpin, or $HENPIN_HOME)", default=argparse.SUPPRESS
    )
    up.add_argument("--no-demo-data", action="store_true", help="start the emulator empty")
    up.add_argument("--policies", help="policy file (default policies.yaml)")
    up.add_argument(
        "--scale",
        action="store_true",
        help="production layout: Prefect and the case store on PostgreSQL, Redis, resident "
        "workers on a work pool (docs/scaling.md)",
    )
    up.add_argument(
        "--workers", type=int, default=2, help="with --scale: resident workers on the work pool"
    )
    up.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/henpin",
        help="with --scale: the case store (created if missing); $HENPIN_DATABASE_URL wins",
    )
    up.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="with --scale")
    up.set_defaults(func=cmd_up)

    st = sub.add_parser("status", help="is the stack up, and where")
    st.add_argument("--home", default=argparse.SUPPRESS)
    st.add_argument(
        "--json",
        action="store_true",
        help='{"ready", "emulator", "prefect_api", "inbox", "regions": {"NA": {"marketplaces", '
        '"auth": ok|refused|missing|unchecked}, ...}, "lock": {"pid", "inbox", "prefect_ui", '
        '"since", "home"} or null (the `henpin up` holding this data folder), "restarts": '
        '{"runner": 1, ...} (parts its supervisor started again)}',
    )
    st.set_defaults(func=cmd_status)

    cases = sub.add_parser("cases", help="list or show cases")
    csub = cases.add_subparsers(dest="cases_command", required=True)
    cl = csub.add_parser("list", help="cases, waiting ones first by deadline")
    cl.add_argument("--state", choices=["open", "waiting", "acting", "closed"])
    cl.add_argument("--json", action="store_true")
    cl.add_argument("--home", default=argparse.SUPPRESS)
    cl.set_defaults(func=cmd_cases_list)
    cs = csub.add_parser("show", help="a case with its timeline, decisions and actions")
    cs.add_argument("id", type=int)
    cs.add_argument("--json", action="store_true")
    cs.add_argument("--home", default=argparse.SUPPRESS)
    cs.set_defaults(func=cmd_cases_show)

    om = csub.add_parser(
        "open-message", help="open a 'cancel asked by message' case from a buyer's e-mail"
    )
    om.add_argument("order_id")
    om.add_argument("--message", required=True, help="the buyer's words")
    om.add_argument("--operator", required=True, help="who opens the case")
    om.add_argument("--json", action="store_true")
    om.add_argument("--home", default=argparse.SUPPRESS)
    om.set_defaults(func=cmd_cases_open_message)

    op = csub.add_parser(
        "open-parcel",
        help="open a refused/unclaimed or address-error case by order id (a returning parcel "
        "the carrier did not report to Amazon)",
    )
    op.add_argument("order_id")
    op.add_argument(
        "--kind",
        required=True,
        choices=["refused", "unclaimed", "address-error"],
        help="refused or unclaimed: the refused-delivery case; address-error: the address case",
    )
    op.add_argument("--operator", required=True, help="an operator or admin of the inbox")
    op.add_argument("--note", default="", help="what the carrier said (kept on the timeline)")
    op.add_argument("--json", action="store_true", help="the opened case, as `cases list`")
    op.add_argument("--home", default=argparse.SUPPRESS)
    op.set_defaults(func=cmd_cases_open_parcel)

    sm = csub.add_parser(
        "settle-message",
        help="say whether a message or e-mail Henpin could not tell was sent went out "
        "(--sent: done; --not-sent: it is sent on the next round)",
    )
    sm.add_argument("id", type=int, help="the case")
    sm.add_argument("key", help="the action's key (cases show ID: actions with uncertain true)")
    went = sm.add_mutually_exclusive_group(required=True)
    went.add_argument("--sent", dest="was_sent", action="store_true")
    went.add_argument("--not-sent", dest="was_sent", action="store_false")
    sm.add_argument("--operator", required=True, help="an operator or admin of the inbox")
    sm.add_argument("--json", action="store_true")
    sm.add_argument("--home", default=argparse.SUPPRESS)
    sm.set_defaults(func=cmd_cases_settle_message)

    from henpin.cli_feeds import add_feeds_parser

    add_feeds_parser(sub)

    from henpin.cli_purge import add_purge_parser

    add_purge_parser(sub)

    from henpin.cli_claims import add_claim_pack_parser

    add_claim_pack_parser(sub)

    d = sub.add_parser("decide", help="answer a waiting case's question (as the inbox does)")
    d.add_argument("id", type=int)
    d.add_argument("--choice", required=True, help="one of the case's choices (see cases list)")
    d.add_argument("--note", default="")
    d.add_argument(
        "--field",
        action="append",
        metavar="NAME=VALUE",
        help="a field of the question's form, e.g. --field amount=12.50 (repeatable)",
    )
    d.add_argument(
        "--operator",
        required=True,
        help="who decides: an active operator or admin of the inbox (stored and audited)",
    )
    d.add_argument(
        "--over-claim",
        action="store_true",
        help="decide a case someone else claimed (the inbox's 'decide anyway')",
    )
    d.add_argument("--json", action="store_true")
    d.add_argument("--home", default=argparse.SUPPRESS)
    d.set_defaults(func=cmd_decide)

    poll = sub.add_parser(
        "poll", help="look for new buyer cancel requests now (one ingestion pass)"
    )
    poll.add_argument("--json", action="store_true")
    poll.add_argument("--home", default=argparse.SUPPRESS)
    poll.set_defaults(func=cmd_poll)

    pol = sub.add_parser("policy", help="policy file tools")
    psub = pol.add_subparsers(dest="policy_command", required=True)
    pc = psub.add_parser(
        "check",
        help="validate a policy file (names file, line and key path); warns when a value"
        " condition has no amount in a watched marketplace's currency",
    )
    pc.add_argument("file", nargs="?", help="default policies.yaml")
    pc.set_defaults(func=cmd_policy_check)

    pr = psub.add_parser(
        "replay", help="decide past cases again under a proposed policy; show what would change"
    )
    pr.add_argument("file", help="the proposed policy file")
    pr.add_argument("--since", help="only cases opened on or after this date (YYYY-MM-DD)")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--home", default=argparse.SUPPRESS)
    pr.set_defaults(func=cmd_policy_replay)

    export_help = (
        "CSV for accounting: the cases opened, or the refunds queued, in a period "
        "(audited as your system login; columns in docs/exports.md)"
    )
    ex = sub.add_parser("export", help=export_help, description=export_help)
    ex.add_argument(
        "kind",
        choices=["cases", "refunds"],
        help="cases: one row per case (outcome, money, the person's decision); refunds: one row "
        "per refunded order item (amount per component, reason, feed, Amazon's result)",
    )
    ex.add_argument(
        "--from",
        dest="first",
        metavar="YYYY-MM-DD",
        required=True,
        help="first day (UTC), included",
    )
    ex.add_argument(
        "--to", dest="last", metavar="YYYY-MM-DD", required=True, help="last day (UTC), included"
    )
    ex.add_argument(
        "--marketplace",
        default="all",
        help="a marketplace id (ATVPDKIKX0DER) or country code (US, JP, ...); default all",
    )
    ex.add_argument(
        "--out", metavar="FILE", help="write the CSV to this file (default: standard output)"
    )
    ex.add_argument("--home", default=argparse.SUPPRESS)
    ex.set_defaults(func=cmd_export)

    em = sub.add_parser("emulator", help="run the SP-API emulator alone")
    em.add_argument("--host", default="127.0.0.1")
    em.add_argument("--port", type=int, default=8500)
    em.add_argument(
        "--fd", type=int, help="serve on this inherited listening socket instead of binding a port"
    )
    em.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per second")
    em.add_argument("--state-file", help="keep the emulator's state in this JSON file")
    em.add_argument("--seed-demo", action="store_true", help="load the demo orders at start")
    em.add_argument(
        "--usage-plans",
        choices=("amazon", "lifted"),
        default="amazon",
        help="amazon (default): Amazon's usage plans throttle each operation. lifted: FOR "
        "BENCHMARKS ONLY, nothing is throttled (bench/: P4 engine capacity)",
    )
    em.set_defaults(func=cmd_emulator)

    mc = sub.add_parser(
        "mailcatcher", help="a local SMTP server that keeps e-mails as files (demo mode)"
    )
    mc.add_argument("--host", default="127.0.0.1")
    mc.add_argument("--port", type=int, default=8525)
    mc.add_argument(
        "--fd", type=int, help="serve on this inherited listening socket instead of binding a port"
    )
    mc.add_argument("--folder", default=".henpin/mail", help="where each e-mail is saved (.eml)")
    mc.set_defaults(func=cmd_mailcatcher)

    rn = sub.add_parser(
        "runner",
        help="execute Henpin's flow runs and run housekeeping (started by `henpin up`)",
        description=(
            "The resident executor: registers Henpin's deployments in the work pool `henpin` "
            "(type henpin-resident), claims their runs through the Prefect API and runs them in "
            "this process, each in its own thread; and runs the housekeeping round. Exits with "
            "75 to be started again after a hung run or too much memory."
        ),
    )
    rn.add_argument(
        "--limit", type=int, default=None, help="most flow runs at once (HENPIN_RUNNER_LIMIT, 16)"
    )
    rn.add_argument(
        "--name",
        default="henpin-runner",
        help="this executor's name in Prefect, unique per process (runs it left running when "
        "it stopped are found by it)",
    )
    rn.add_argument(
        "--no-housekeeping",
        action="store_true",
        help="do not run the housekeeping round (a separate housekeeper does: henpin up --scale)",
    )
    rn.add_argument(
        "--no-deploy",
        action="store_true",
        help="do not register the deployments first (done once by `python -m henpin.scale deploy`)",
    )
    rn.add_argument(
        "--process-per-run",
        action="store_true",
        help="the former runner instead: Prefect's Runner, a new process per flow run",
    )
    rn.add_argument("--home", default=argparse.SUPPRESS)
    rn.set_defaults(func=cmd_runner)

    op = sub.add_parser(
        "operator",
        help="manage inbox operators (audited with source cli; passwords never on the command "
        "line)",
    )
    osub = op.add_subparsers(dest="operator_command", required=True)
    password_help = (
        "read the password from the first line of stdin; without it, you are asked at a "
        f"terminal (empty: a random one), else a random one is printed once. At least "
        f"{MIN_PASSWORD} characters"
    )
    name_help = (
        "1 to 80 characters, no control characters, no space at either end (as the inbox's form)"
    )
    oa = osub.add_parser(
        "add",
        help="add an operator (a name already taken is refused: see set-role, reset-password)",
    )
    oa.add_argument("name", help=name_help)
    oa.add_argument("--role", choices=["viewer", "operator", "admin"], default="operator")
    _password_arguments(oa, password_help)
    oa.set_defaults(func=cmd_operator_add)
    osr = osub.add_parser(
        "set-role",
        help="give an operator another role (refused if it would leave no active admin)",
    )
    osr.add_argument("name")
    osr.add_argument("role", choices=["viewer", "operator", "admin"])
    osr.add_argument("--home", default=argparse.SUPPRESS)
    osr.set_defaults(func=cmd_operator_set_role)
    orp = osub.add_parser(
        "reset-password",
        help="a new password for an operator; ends their open inbox sessions, lifts locks",
    )
    orp.add_argument("name")
    _password_arguments(orp, password_help)
    orp.set_defaults(func=cmd_operator_reset_password)
    return p


def _password_arguments(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--password-stdin", action="store_true", help=help_text)
    parser.add_argument("--password", help=argparse.SUPPRESS)  # refused, pointing to stdin
    parser.add_argument("--home", default=argparse.SUPPRESS)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
