"""`henpin claim-pack CASE_ID --out FILE --operator NAME`: write a case's claim pack (a zip with
its photos, the order, the return and refund facts, the timeline and the decisions) for a SAFE-T
claim or an A-to-z dispute, as the inbox's download does (henpin.app.claim_packs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def cmd_claim_pack(args: argparse.Namespace) -> int:
    from henpin.app.claim_packs import ClaimPackRefused, build_claim_pack
    from henpin.cli import _migrate, _print_json, _settings

    settings = _settings(args)
    store_url = _migrate(settings)
    try:
        pack = build_claim_pack(
            store_url, settings.home, args.id, operator=args.operator, where="cli"
        )
    except ClaimPackRefused as refused:
        if args.json:
            _print_json({"case_id": args.id, "written": False, "error": str(refused)})
        print(f"henpin claim-pack: {refused} Nothing was written.", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.write_bytes(pack.data)
    if args.json:
        _print_json(
            {
                "case_id": args.id,
                "written": True,
                "file": str(out),
                "bytes": len(pack.data),
                "photos": pack.photos,
                "missing_photos": pack.missing_photos,
            }
        )
    else:
        print(f"Case {args.id}: claim pack with {pack.photos} photo(s) written to {out}")
    for name in pack.missing_photos:
        print(f"henpin claim-pack: photo {name} is recorded but its file is gone", file=sys.stderr)
    return 0


def add_claim_pack_parser(sub: Any) -> None:
    cp = sub.add_parser(
        "claim-pack",
        help="write a case's claim pack for a SAFE-T claim or an A-to-z dispute: a zip with "
        "its photos, the order, return and refund facts, timeline and decisions (audited)",
    )
    cp.add_argument("id", type=int, metavar="CASE_ID")
    cp.add_argument("--out", required=True, metavar="FILE", help="the zip file to write")
    cp.add_argument(
        "--operator",
        required=True,
        help="who exports it: an active operator or admin of the inbox (audited)",
    )
    cp.add_argument(
        "--json",
        action="store_true",
        help='{"case_id", "written", "file", "bytes", "photos", "missing_photos"} '
        '(or {"case_id", "written": false, "error"})',
    )
    cp.add_argument("--home", default=argparse.SUPPRESS)
    cp.set_defaults(func=cmd_claim_pack)
