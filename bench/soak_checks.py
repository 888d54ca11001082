"""The soak's verdict, from Amazon's side (the emulator) and the case store.

Pure functions over what the emulator's control API and the case store hold at the end:
- each seeded order has one cancel-request case, closed with the outcome its decision calls for;
- each due cancellation was applied exactly once at Amazon: counted per order from the
  successful BuyerCanceled messages in every feed's parsed results (`GET /_emulator/feeds`).
  Lost: a case closed without its due cancellation applied (and without Amazon's refusal to
  show for it). Duplicated: more than one success, or a cancel sent again after one applied.
  A case not closed at the end is unfinished (never lost or kept silently: the soak fails), and
  so is one the outbox closed on Amazon's word whose flow run has not ended it (`run_to_finish`);
- each decision the soak saw accepted is in the case store with the same operator and choice.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

ORDER_ACKNOWLEDGEMENT = "POST_ORDER_ACKNOWLEDGEMENT_DATA"
CANCELLED = "cancelled-buyer-canceled"
REJECTED = "amazon-rejected"
KEPT = "kept-order"


@dataclass(frozen=True)
class Attempt:
    """One cancel message for an order, as Amazon received it."""

    feed_id: str
    created: str
    message_id: int
    reasons: tuple[str | None, ...]
    result: str | None  # Success, Error, or None while the feed is not finished
    code: str | None
    feed_status: str


def cancel_attempts(feeds: list[dict[str, Any]]) -> dict[str, list[Attempt]]:
    """Every cancel message (StatusCode Failure) per order id, oldest feed first."""
    attempts: dict[str, list[Attempt]] = defaultdict(list)
    for feed in sorted(feeds, key=lambda f: (f["createdTime"], f["feedId"])):
        if feed["feedType"] != ORDER_ACKNOWLEDGEMENT or not feed.get("document"):
            continue
        results = {r["messageId"]: r for r in feed.get("results") or []}
        fatal = feed["processingStatus"] == "FATAL"
        try:
            root = ET.fromstring(feed["document"])
        except ET.ParseError:
            continue
        for message in root.iter("Message"):
            ack = message.find("OrderAcknowledgement")
            if ack is None or (ack.findtext("StatusCode") or "").strip() != "Failure":
                continue
            order_id = (ack.findtext("AmazonOrderID") or "").strip()
            message_id = int((message.findtext("MessageID") or "0").strip() or 0)
            own = results.get(message_id)
            if fatal:
                result, code = "Error", (results.get(0) or {}).get("code") or "FATAL"
            elif own is not None:
                result, code = own["resultCode"], own.get("code")
            else:
                result, code = None, None
            attempts[order_id].append(
                Attempt(
                    feed_id=feed["feedId"],
                    created=feed["createdTime"],
                    message_id=message_id,
                    reasons=tuple(
                        (i.findtext("CancelReason") or "").strip() or None
                        for i in ack.findall("Item")
                    ),
                    result=result,
                    code=code,
                    feed_status=feed["processingStatus"],
                )
            )
    return attempts


@dataclass
class Seeded:
    """An order the soak loaded, and what policy should do with its buyer's request."""

    order_id: str
    marketplace_id: str
    high_value: bool  # above the policy's high-value line: an operator decides


@dataclass
class AcceptedDecision:
    case_id: int
    operator: str
    choice: str


@dataclass
class Verdict:
    cases: int
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    decisions_kept: int = 0
    decisions_accepted: int = 0
    expected: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not (self.lost or self.duplicated or self.wrong or self.unfinished)
            and self.decisions_kept == self.decisions_accepted
        )

    def last_line(self) -> str:
        return (
            f"soak: {self.cases} cases, {len(self.lost)} lost, {len(self.duplicated)} "
            f"duplicated, {self.decisions_kept}/{self.decisions_accepted} decisions kept"
        )


def judge(
    seeded: list[Seeded],
    emulator_orders: dict[str, dict[str, Any]],
    emulator_feeds: list[dict[str, Any]],
    store_cases: list[dict[str, Any]],
    store_decisions: list[dict[str, Any]],
    accepted: list[AcceptedDecision],
) -> Verdict:
    verdict = Verdict(cases=len(seeded))
    attempts = cancel_attempts(emulator_feeds)
    cases_by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in store_cases:
        if c["type"] == "cancel-request":
            cases_by_order[c["order_id"]].append(c)
    winners: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for d in store_decisions:
        winners[d["case_id"]].append(d)

    for s in seeded:
        oid = s.order_id
        cases = cases_by_order.get(oid, [])
        if len(cases) != 1:
            verdict.unfinished.append(f"{oid}: {len(cases)} cancel-request cases (want 1)")
            continue
        case = cases[0]
        decisions = winners.get(case["id"], [])
        if len(decisions) > 1 and len({d["step"] for d in decisions}) < len(decisions):
            verdict.wrong.append(f"{oid}: two recorded winners for one question")
        if s.high_value:
            choice = decisions[0]["choice"] if decisions else None
            due = {"cancel": "cancel", "keep_order": "keep", None: "undecided"}.get(
                choice, f"other:{choice}"
            )
        else:
            due = "cancel"
            if decisions:
                verdict.wrong.append(f"{oid}: policy case has a decision {decisions[0]}")
        verdict.expected[due] += 1
        verdict.outcomes[case["outcome"] or case["state"]] += 1

        tries = attempts.get(oid, [])
        successes = [a for a in tries if a.result == "Success"]
        first_ok = next((i for i, a in enumerate(tries) if a.result == "Success"), None)
        order = emulator_orders.get(oid) or {}
        status = (order.get("fulfillment") or {}).get("fulfillmentStatus")
        executions = [
            ((i.get("cancellation") or {}).get("cancellationExecution") or {})
            for i in order.get("orderItems") or []
        ]
        reasons = {e.get("cancelReason") for e in executions if e}

        if len(successes) > 1 or (first_ok is not None and first_ok < len(tries) - 1):
            verdict.duplicated.append(
                f"{oid}: {len(successes)} successful cancel message(s), {len(tries)} sent "
                f"({', '.join(f'{a.feed_id}#{a.message_id}:{a.result}' for a in tries)})"
            )
        if case["state"] != "closed":
            verdict.unfinished.append(
                f"{oid}: case {case['id']} is {case['state']}"
                + (f" ({case['needs_attention']})" if case.get("needs_attention") else "")
            )
        elif case.get("run_to_finish"):
            verdict.unfinished.append(
                f"{oid}: case {case['id']} is closed (Amazon confirmed) but its flow run has "
                "not ended it"
            )
        outcome = case["outcome"]

        if due == "cancel":
            if successes:
                if status != "CANCELLED" or reasons != {"BuyerCanceled"}:
                    verdict.wrong.append(
                        f"{oid}: cancel applied but the order is {status}, reasons {reasons}"
                    )
                if case["state"] == "closed" and outcome != CANCELLED:
                    verdict.wrong.append(f"{oid}: cancelled at Amazon but case says {outcome}")
            elif case["state"] != "closed":
                pass  # still under way: unfinished (above), not (yet) lost
            elif outcome == REJECTED and tries and all(a.result == "Error" for a in tries):
                if status == "CANCELLED":
                    verdict.wrong.append(f"{oid}: rejected by Amazon yet cancelled")
            else:
                verdict.lost.append(
                    f"{oid}: cancellation due, case {case['id']} closed as {outcome}, "
                    f"{len(tries)} sent, none applied; order {status}"
                )
        elif due == "keep":
            if tries or status != "UNSHIPPED":
                verdict.wrong.append(f"{oid}: kept by the operator but {len(tries)} cancel(s) sent")
            if case["state"] == "closed" and outcome != KEPT:
                verdict.wrong.append(f"{oid}: keep_order decided but case says {outcome}")
        elif due == "undecided":
            if case["state"] == "closed":
                verdict.wrong.append(f"{oid}: closed as {outcome} without a decision")
            elif tries:
                verdict.wrong.append(f"{oid}: cancel sent without a decision")
        else:
            verdict.wrong.append(f"{oid}: unexpected decision {due}")

    recorded = {(d["case_id"], d["operator"], d["choice"]) for d in store_decisions}
    per_case = Counter(a.case_id for a in accepted)
    for case_id, n in per_case.items():
        if n > 1:
            verdict.wrong.append(f"case {case_id}: {n} decisions accepted for one question")
    verdict.decisions_accepted = len(accepted)
    verdict.decisions_kept = sum(
        1 for a in accepted if (a.case_id, a.operator, a.choice) in recorded
    )
    return verdict
