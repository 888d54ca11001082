"""`henpin purge`: take buyers' personal data out of cases closed longer ago than the policy's
retention (`retention.buyer_data_days`), now, instead of waiting for housekeeping; with
`--dry-run`, only say what would go."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import Any


def cmd_purge(args: argparse.Namespace) -> int:
    from henpin.cli import _home, _migrate, _print_json, _settings, _use_stack_prefect
    from henpin.policy import PolicyError

    settings = _settings(args)
    # Where the cases' task results are (before Prefect reads its settings): the home's result
    # storage, as every layout of `henpin up` keeps it, unless the environment says otherwise.
    storage = (_home(args) / "prefect" / "storage").resolve()
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(storage))
    if not args.dry_run and not _use_stack_prefect(_home(args)):
        print(
            "henpin purge: Henpin is not running in this home, and the purge deletes what "
            "Prefect keeps of each case too; start it with `henpin up` (or use --dry-run).",
            file=sys.stderr,
        )
        return 1
    _migrate(settings)
    from henpin.app.purge import purge_buyer_data  # imports Prefect: after its settings are set

    try:
        report = purge_buyer_data(settings, datetime.now(UTC), dry_run=args.dry_run)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if args.json:
        _print_json(report.model_dump(mode="json"))
        return 0
    verb = "would lose" if args.dry_run else "lost"
    print(
        f"{len(report.case_ids)} case(s) closed before {report.cutoff:%Y-%m-%d %H:%M} UTC "
        f"({report.retention_days} days) {verb} their buyers' personal data"
        + (f": {', '.join(map(str, report.case_ids))}" if report.case_ids else "")
    )
    for place, rows in report.places.items():
        print(f"  {place}: {rows}")
    return 0


def add_purge_parser(sub: Any) -> None:
    pu = sub.add_parser(
        "purge",
        help="remove buyers' personal data from cases closed longer ago than the policy's"
        " retention (housekeeping does it too); --dry-run says what would go",
    )
    pu.add_argument("--dry-run", action="store_true", help="change nothing; say what would go")
    pu.add_argument("--json", action="store_true")
    pu.add_argument("--home", default=argparse.SUPPRESS)
    pu.set_defaults(func=cmd_purge)
