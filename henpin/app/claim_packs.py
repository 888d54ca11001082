"""A case's claim pack: one zip with what a seller hands Amazon to dispute a refund.

A SAFE-T claim (Seller Central, Orders > Manage SAFE-T Claims) starts from the order id (Amazon
checks eligibility: a refund must already have been issued), then asks for the claim reason,
a description, and supporting documents such as clear photos of the returned item and its
packaging; Amazon may ask for more documents, to be answered within three business days.
Sources: Amazon's Seller Forums guide "How to file a SAFE-T claim: steps and best practices"
(sellercentral.amazon.com/seller-forums/discussions/t/45d6f0b0-08c9-4cba-8739-940d50dc95b8)
and Seller Central help 4JQY4B7XT3APCRM (SAFE-T Communication Center). An A-to-z dispute is
answered with the same facts: the order, what was returned and refunded, and when.

The pack holds:
- `claim.txt`: the facts in plain words, ready to paste into the claim's description;
- `case.json`: the case, the order (items and what was paid), the return, the refunds and
  Amazon's results, the timeline and the decisions, and the photos' names and SHA-256;
- `photos/`: the photos attached to the case, as uploaded.

What names or describes the buyer (name, e-mail, address, their own words, Amazon's raw payload;
`henpin.store.purge.PERSONAL_KEYS`) is left out: the claim needs the order id, and Amazon has
the rest. Only active operators and admins build packs; each is audited and on the timeline.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from henpin.accounts import audit, find_operator
from henpin.app.cases import CaseDetail, show_case
from henpin.domain import ActionKind
from henpin.evidence import PhotoView, case_photos, read_photo
from henpin.store.db import session_scope
from henpin.store.models import Event
from henpin.store.purge import DROPPED_KEYS, PERSONAL_KEYS

CLAIM_PACK_EXPORTED = "claim-pack-exported"  # audit action and timeline kind
SAFE_T_SOURCE = (
    "https://sellercentral.amazon.com/seller-forums/discussions/t/"
    "45d6f0b0-08c9-4cba-8739-940d50dc95b8"
)


class ClaimPackRefused(Exception):
    """No pack: `code` is not-allowed (not an active operator or admin) or no-case."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ClaimPack:
    file_name: str  # e.g. claim-pack-case-12-113-1234567-1234567.zip
    data: bytes
    photos: int
    missing_photos: list[str]  # recorded, but their file is gone from the data folder


def _without_personal(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_personal(v)
            for k, v in value.items()
            if k not in PERSONAL_KEYS and k not in DROPPED_KEYS
        }
    if isinstance(value, list):
        return [_without_personal(v) for v in value]
    return value


def _photo_entry(index: int, photo: PhotoView) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(photo.name).stem)[:60].strip("._") or "photo"
    return f"photos/{index:02d}-{stem}.{photo.file.rsplit('.', 1)[-1]}"


def claim_facts(case: CaseDetail, photos: list[tuple[str, PhotoView]]) -> dict[str, Any]:
    """What `case.json` holds: the case's facts for a claim, without the buyer's personal data."""
    details = _without_personal(case.details)
    refunds = [
        {
            "key": a.key,
            "status": a.status,
            "feed_id": a.amazon_feed_id,
            "result": a.result_code,
            "result_message": a.result_message,
            "at": a.updated_at.isoformat(),
            "refund": _without_personal(a.payload),
        }
        for a in case.actions
        if a.kind == ActionKind.REFUND.value
    ]
    return {
        "case": {
            "id": case.id,
            "type": case.type,
            "order_id": case.order_id,
            "marketplace_id": case.marketplace_id,
            "marketplace": case.marketplace,
            "state": case.state,
            "outcome": case.outcome,
            "created_at": case.created_at.isoformat(),
            "closed_at": case.closed_at.isoformat() if case.closed_at else None,
            "policy_version": case.policy_version,
        },
        "order": _without_personal(case.order),
        "return": details.pop("return", None),
        "facts": details,
        "refunds": refunds,
        "decisions": [
            {
                "at": d.at.isoformat(),
                "step": d.step,
                "choice": d.choice,
                "fields": _without_personal(d.data),
                "note": d.note,
                "operator": d.operator,
                "source": d.source,
            }
            for d in case.decisions
        ],
        "timeline": [
            {"at": e.at.isoformat(), "kind": e.kind, "message": e.message} for e in case.timeline
        ],
        "photos": [
            {
                "file": entry,
                "name": p.name,
                "content_type": p.content_type,
                "size": p.size,
                "sha256": p.sha256,
                "added_by": p.added_by,
                "added_at": p.added_at.isoformat(),
                "step": p.step,
            }
            for entry, p in photos
        ],
    }


def _money(value: Any) -> str:
    if isinstance(value, dict) and "amount" in value:
        return f"{value['amount']} {value.get('currency', '')}".strip()
    return "—"


def claim_text(facts: dict[str, Any], now: datetime) -> str:
    """`claim.txt`: the facts in the order the claim form asks for them."""
    case, ret = facts["case"], facts["return"] or {}
    condition = next(
        (d["fields"].get("condition") for d in facts["decisions"] if d["fields"].get("condition")),
        None,
    )
    lines = [
        f"Claim pack for order {case['order_id']} (marketplace {case['marketplace'] or ''} "
        f"{case['marketplace_id']}), Henpin case {case['id']} ({case['type']}).",
        f"Made {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "Order",
        f"- Order id: {case['order_id']}",
        f"- Order value: {_money(facts['order'].get('value'))}",
    ]
    for item in facts["order"].get("items", []):
        lines.append(
            f"- Item {item.get('sku') or '?'} x{item.get('quantity')}: {item.get('title') or ''}"
            f" ({_money(item.get('unit_price'))} each)"
        )
    if ret:
        lines += [
            "",
            "Return",
            f"- Return (RMA) id: {ret.get('rma_id') or '—'}",
            f"- Requested: {ret.get('requested_at') or '—'}",
            f"- Reason code: {ret.get('reason_code') or '—'}",
            f"- Delivered back: {ret.get('return_delivery_date') or '—'}",
            f"- Refunded as the returns report shows: {_money(ret.get('refunded_amount'))}",
        ]
    if condition:
        lines.append(f"- Condition recorded at inspection: {condition}")
    lines += ["", "Refunds sent by Henpin"]
    for refund in facts["refunds"]:
        components = [
            f"{c.get('type')} {c.get('amount')} {c.get('currency')}"
            for item in refund["refund"].get("items", [])
            for c in item.get("components", [])
        ]
        lines.append(
            f"- {refund['at']}: {', '.join(components) or '—'}; status {refund['status']}"
            + (f", Amazon: {refund['result']}" if refund["result"] else "")
        )
    if not facts["refunds"]:
        lines.append("- none")
    lines += ["", "Decisions"]
    for d in facts["decisions"]:
        fields = ", ".join(f"{k}={v}" for k, v in d["fields"].items())
        lines.append(
            f"- {d['at']} {d['operator']} ({d['source']}): {d['choice']}"
            + (f" [{fields}]" if fields else "")
            + (f" — {d['note']}" if d["note"] else "")
        )
    lines += ["", "Timeline"]
    lines += [f"- {e['at']} {e['message']}" for e in facts["timeline"]]
    lines += ["", f"Photos ({len(facts['photos'])})"]
    lines += [
        f"- {p['file']}: {p['name']}, taken in by {p['added_by']} at {p['added_at']}, "
        f"SHA-256 {p['sha256']}"
        for p in facts["photos"]
    ]
    lines += [
        "",
        "Filing: Seller Central > Orders > Manage SAFE-T Claims > File a new SAFE-T claim;",
        "enter the order id, pick the claim reason, describe what came back and attach the",
        f"photos. Amazon's guide: {SAFE_T_SOURCE}",
        "The buyer's name, address and own words are left out of this pack (personal data).",
    ]
    return "\n".join(lines) + "\n"


def build_claim_pack(
    store_url: str,
    home: Path,
    case_id: int,
    *,
    operator: str,
    where: str,
    now: datetime | None = None,
) -> ClaimPack:
    """The case's claim pack as zip bytes, for the inbox's download and `henpin claim-pack`.
    Refused (ClaimPackRefused) for anyone but an active operator or admin, or an unknown case.
    Audited, and a line on the case's timeline."""
    who = find_operator(store_url, operator)
    if who is None or not who.active or not who.can_decide:
        raise ClaimPackRefused("not-allowed", f"{operator} is not an active operator or admin.")
    case = show_case(store_url, case_id)
    if case is None:
        raise ClaimPackRefused("no-case", f"There is no case {case_id}.")
    now = now or datetime.now(UTC)
    photos = case_photos(store_url, case_id)
    packed: list[tuple[str, PhotoView]] = []
    missing: list[str] = []
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as pack:
        for index, photo in enumerate(photos, start=1):
            data = read_photo(home, photo)
            if data is None:
                missing.append(photo.name)
                continue
            entry = _photo_entry(index, photo)
            pack.writestr(entry, data, compress_type=zipfile.ZIP_STORED)  # already compressed
            packed.append((entry, photo))
        facts = claim_facts(case, packed)
        facts["missing_photos"] = missing
        pack.writestr("claim.txt", claim_text(facts, now))
        pack.writestr("case.json", json.dumps(facts, indent=2, ensure_ascii=False, default=str))
    safe_order = re.sub(r"[^A-Za-z0-9-]", "_", case.order_id)
    detail = {"photos": len(packed), "missing_photos": len(missing)}
    with session_scope(store_url) as s:
        s.add(
            Event(
                case_id=case_id,
                kind=CLAIM_PACK_EXPORTED,
                message=f"{operator} exported the claim pack ({len(packed)} photo(s))",
                data={"operator": operator, **detail},
            )
        )
    audit(
        store_url,
        operator,
        CLAIM_PACK_EXPORTED,
        target=f"case {case_id}",
        where=where,
        detail=detail,
    )
    return ClaimPack(
        file_name=f"claim-pack-case-{case_id}-{safe_order}.zip",
        data=out.getvalue(),
        photos=len(packed),
        missing_photos=missing,
    )
