"""The inbox's list that keeps up (search, filters in the URL, one table with row selection, new
cases counted) and the exports for accounting (the inbox's button and `henpin export`).

A real SQLite case store under tmp_path; the inbox driven through Streamlit's AppTest; the CLI
through its own `main()`.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from henpin.accounts import add_operator
from henpin.app import decide
from henpin.app.cases import CaseFilter, find_cases
from henpin.app.exports import ExportRefused, Period, export
from henpin.cli import main as henpin
from henpin.domain import FulfillmentStatus, Money, Order, OrderItem
from henpin.money import to_minor_units
from henpin.store.db import session_scope
from henpin.store.models import AuditEntry, Feed
from henpin.store.opening import order_snapshot
from tests.test_inbox_support import (
    address_error_case,
    cancel_order,
    closed_case,
    decision,
    fresh_store,
    listed,
    on_page,
    select_rows,
    set_operator,
    signed_in,
    stored_action,
    table_text,
    texts,
    waiting_case,
)


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return fresh_store(tmp_path, monkeypatch)


def order_of(order_id: str, sku: str, buyer: str | None, **kw: Any) -> dict[str, Any]:
    order = cancel_order(order_id, kw.get("marketplace_id", "ATVPDKIKX0DER"))
    order["items"][0]["sku"] = sku
    order["buyer_name"] = buyer
    return order


def three_cases(url: str) -> tuple[int, int, int]:
    a = waiting_case(
        url,
        "111-0000000-0000401",
        timedelta(hours=1),
        order_snapshot=order_of("111-0000000-0000401", "KETTLE-US-01", "Jane Doe"),
    )
    b = waiting_case(
        url,
        "250-0000000-0000402",
        timedelta(hours=2),
        marketplace_id="A1VC38T7YXB528",
        order_snapshot=order_of(
            "250-0000000-0000402", "TEAPOT_JP_02", "田中 花子", marketplace_id="A1VC38T7YXB528"
        ),
    )
    c = waiting_case(
        url,
        "111-0000000-0000403",
        timedelta(hours=3),
        order_snapshot=order_of("111-0000000-0000403", "CUP-100%", None),
    )
    return a, b, c


def audit_rows(url: str, action: str) -> list[AuditEntry]:
    with session_scope(url) as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


# --- search ----------------------------------------------------------------------------------------


def test_search_finds_cases_by_order_id_sku_and_buyer_name(store_url: str) -> None:
    a, b, c = three_cases(store_url)
    at = signed_in()
    assert listed(at) == [a, b, c]
    for term, expected in [
        ("0000402", [b]),  # part of an order id
        ("kettle-us", [a]),  # a SKU, in any case
        ("jane", [a]),  # the buyer's name
        ("田中", [b]),
        ("100%", [c]),  # % and _ are letters here, not wildcards
        ("TEAPOT_JP", [b]),
        ("_", [b]),
        ("nothing like it", []),
    ]:
        at.text_input(key="inbox.search").input(term).run()
        assert not at.exception
        assert listed(at) == expected, term
        assert at.query_params["q"] == term  # the search is in the URL
    assert "No case matches these filters." in texts(at)


def test_search_works_the_same_in_the_library_on_both_databases(case_store: str) -> None:
    a, b, c = three_cases(case_store)
    found = find_cases(case_store, CaseFilter(search="cup-1"))
    assert [x.id for x in found.cases] == [c] and found.total == 1
    both = find_cases(case_store, CaseFilter(search="111-0000000"))
    assert [x.id for x in both.cases] == [a, c]
    assert [x.id for x in find_cases(case_store, CaseFilter(search="TEAPOT_J")).cases] == [b]
    assert [x.id for x in find_cases(case_store, CaseFilter(search="花子")).cases] == [b]
    assert [x.id for x in find_cases(case_store, CaseFilter(search="JANE DOE")).cases] == [a]
    assert find_cases(case_store, CaseFilter(search="%")).total == 1  # the SKU "CUP-100%"


# --- filters in the URL ----------------------------------------------------------------------------


def test_a_shared_link_sets_the_filters_and_the_filters_write_the_link(store_url: str) -> None:
    us = waiting_case(store_url, "111-0000000-0000411", timedelta(hours=5))
    address = address_error_case(store_url, "302-0000000-0000412")
    de = waiting_case(
        store_url, "302-0000000-0000413", timedelta(hours=1), marketplace_id="A1PA6795UKMFR9"
    )
    at = on_page(signed_in(), "inbox", type="address-error,cancel-request", market="A1PA6795UKMFR9")
    assert not at.exception
    assert at.multiselect(key="inbox.types").value == ["address-error", "cancel-request"]
    assert at.multiselect(key="inbox.marketplaces").value == ["A1PA6795UKMFR9"]
    assert listed(at) == [de, address]

    at.multiselect(key="inbox.marketplaces").unselect("A1PA6795UKMFR9")
    at.selectbox(key="inbox.sort").set_value("newest").run()
    assert listed(at) == [de, address, us]
    assert at.query_params == {"type": "address-error,cancel-request", "sort": "newest"}
    at.selectbox(key="inbox.claimed").set_value("\x00nobody")
    at.multiselect(key="inbox.states").select("closed")
    at.checkbox(key="inbox.attention").check().run()
    assert at.query_params["unclaimed"] == "1" and at.query_params["attention"] == "1"
    assert at.query_params["state"] == "waiting,acting,open,closed"

    # Someone else opens the link: the same view, in their own session.
    link = dict(at.query_params)
    add_operator(store_url, "bob", "pw-bob-123456")
    other = on_page(signed_in("bob", "pw-bob-123456"), "inbox", **link)
    assert not other.exception
    assert other.selectbox(key="inbox.sort").value == "newest"
    assert other.selectbox(key="inbox.claimed").value == "\x00nobody"
    assert other.checkbox(key="inbox.attention").value is True
    assert listed(other) == []  # none of them needs attention


def test_a_link_with_unknown_values_falls_back_to_the_defaults(store_url: str) -> None:
    waiting_case(store_url, "111-0000000-0000421", timedelta(hours=5))
    at = on_page(signed_in(), "inbox", due="forever", sort="chaos", state="nonsense")
    assert not at.exception
    assert at.selectbox(key="inbox.due").value == "any"
    assert at.selectbox(key="inbox.sort").value == "deadline"
    assert at.multiselect(key="inbox.states").value == []  # no state it knows: all of them


# --- one table, rows selected ----------------------------------------------------------------------


def test_selecting_a_row_opens_its_case(store_url: str) -> None:
    _a, b, _ = three_cases(store_url)
    at = signed_in()
    assert not [x for x in at.button if x.key == "inbox.open_selected"]
    at = select_rows(at, b)
    assert at.button(key="inbox.open_selected").label == f"Open case #{b}"
    at.button(key="inbox.open_selected").click().run()
    assert not at.exception
    assert at.query_params == {"case": str(b)}
    assert "250-0000000-0000402" in "\n".join(h.value for h in at.title)


def test_selecting_rows_picks_them_for_a_bulk_decision(store_url: str) -> None:
    a, _b, c = three_cases(store_url)
    address = address_error_case(store_url, "302-0000000-0000431")
    at = select_rows(signed_in(), a, address)
    assert "select waiting cases of one type" in texts(at)  # two types: not together
    assert not [x for x in at.button if x.key in ("inbox.open_selected", "inbox.bulk_selected")]
    at = select_rows(at, a, c)
    assert at.button(key="inbox.bulk_selected").label == "Decide these 2 together"
    at.button(key="inbox.bulk_selected").click().run()
    assert not at.exception
    assert at.selectbox(key="bulk.type").value == "cancel-request"
    assert at.multiselect(key="bulk.cases").value == [a, c]

    at.radio(key="bulk.choice").set_value("escalate")
    at.button(key="bulk.preview_button").click().run()
    at.button(key="bulk.confirm").click().run()
    assert not at.exception
    assert "2 of 2 cases decided; 0 not." in at.success[0].value


def test_a_viewer_selects_one_row_to_read_and_exports_nothing(store_url: str) -> None:
    a, _, _ = three_cases(store_url)
    add_operator(store_url, "vera", "pw-vera-123456", role="viewer")
    at = signed_in("vera", "pw-vera-123456")
    assert not at.exception
    assert not [x for x in at.button if x.key == "export.make"]  # no export for viewers
    assert "Export for accounting (CSV)" not in [e.label for e in at.expander]
    at = select_rows(at, a)
    assert not [x for x in at.button if x.key == "inbox.bulk_selected"]
    assert at.button(key="inbox.open_selected")
    with pytest.raises(ExportRefused) as refused:
        export(
            store_url,
            "cases",
            Period(date(2026, 1, 1), date(2026, 12, 31)),
            None,
            by="vera",
            where="test",
        )
    assert refused.value.code == "not-allowed"
    assert audit_rows(store_url, "exported") == []


def test_cases_opened_since_the_operator_last_looked_are_counted_and_marked(
    store_url: str,
) -> None:
    waiting_case(store_url, "111-0000000-0000441", timedelta(hours=5))
    at = signed_in()
    assert not [m for m in at.info if "new case" in m.value]
    # A case whose opening the page has not seen yet (as one arriving between two refreshes).
    waiting_case(
        store_url,
        "111-0000000-0000442",
        timedelta(hours=6),
        created_at=datetime.now(UTC) + timedelta(minutes=5),
    )
    at.run()
    assert any("**1** new case(s) since you last looked" in m.value for m in at.info)
    rows = table_text(at).splitlines()
    assert any("111-0000000-0000442" in r and "new" in r for r in rows)
    assert not any("111-0000000-0000441" in r and "new" in r for r in rows)


def test_policy_replay_shows_its_progress(store_url: str) -> None:
    for n in range(3):
        order_id = f"111-0000000-000046{n}"
        placed = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)
        order = Order(
            order_id=order_id,
            marketplace_id="ATVPDKIKX0DER",
            created_time=placed,
            last_updated_time=placed,
            fulfillment_status=FulfillmentStatus.UNSHIPPED,
            items=[
                OrderItem(
                    order_item_id=f"{order_id}-1",
                    unit_price=Money(amount=Decimal("250.00"), currency="USD"),
                    cancel_requested_by_buyer=True,
                )
            ],
        )
        waiting_case(store_url, order_id, timedelta(hours=3), order_snapshot=order_snapshot(order))
    set_operator(store_url, "alice", role="admin")
    at = on_page(signed_in(), "replay")
    at = at.button(key="replay.run").click().run()
    assert not at.exception
    [status] = at.status
    assert (status.label, status.state) == ("Replay finished", "complete")
    [bar] = at.progress
    assert (bar.value, bar.text) == (100, "Case 3 of 3")


def test_bulk_decisions_show_their_progress_until_the_summary(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _b, c = three_cases(store_url)
    at = select_rows(signed_in(), a, c)
    at.button(key="inbox.bulk_selected").click().run()
    at.radio(key="bulk.choice").set_value("escalate")
    at.button(key="bulk.preview_button").click().run()
    seen: list[tuple[int, int]] = []
    real = decide.decide_bulk

    def watched(*args: Any, **kw: Any) -> Any:
        told = kw["progress"]
        kw["progress"] = lambda done, total: (seen.append((done, total)), told(done, total))
        return real(*args, **kw)

    # The real decisions, with the page's own progress callback watched as it is told.
    monkeypatch.setattr(decide, "decide_bulk", watched)
    at.button(key="bulk.confirm").click().run()
    assert not at.exception
    assert seen == [(0, 2), (1, 2), (2, 2)]
    assert "2 of 2 cases decided; 0 not." in at.success[0].value


# --- exports ---------------------------------------------------------------------------------------

DAY = datetime.now(UTC).date()


def refunded_case(url: str) -> int:
    """A closed German return with two refunds: one Amazon processed, one it refused."""
    order = order_of(
        "302-0000000-0000451", "MUG-DE-01", "Max Muster", marketplace_id="A1PA6795UKMFR9"
    )
    order["value"] = {"amount": "34.99", "currency": "EUR"}
    case_id = closed_case(
        url,
        "302-0000000-0000451",
        "refunded-partly",
        type="return-request",
        marketplace_id="A1PA6795UKMFR9",
        order_snapshot=order,
    )
    decision(url, case_id, "refund_other_amount", datetime.now(UTC))
    with session_scope(url) as s:
        feed = Feed(
            feed_type="POST_PAYMENT_ADJUSTMENT_DATA",
            marketplace_id="A1PA6795UKMFR9",
            amazon_feed_id="50001019999",
            status="done",
        )
        s.add(feed)
        s.flush()
        feed_id = feed.id
    items = [
        {
            "order_item_id": "OI-1",
            "reason": "CustomerReturn",
            "components": [
                {"type": "Principal", "amount": "29.99", "currency": "EUR"},
                {"type": "Shipping", "amount": "4.90", "currency": "EUR"},
                {"type": "RestockingFee", "amount": "-3.00", "currency": "EUR"},
            ],
            "promotions": [{"type": "Principal", "amount": "-0.01", "currency": "EUR"}],
        },
        {
            "order_item_id": "OI-2",
            "reason": "CustomerReturn",
            "components": [{"type": "Principal", "amount": "0.10", "currency": "EUR"}],
        },
    ]
    stored_action(
        url,
        case_id,
        "refund:302-0000000-0000451:1",
        kind="refund",
        feed_type="POST_PAYMENT_ADJUSTMENT_DATA",
        marketplace_id="A1PA6795UKMFR9",
        payload={"order_id": "302-0000000-0000451", "action_type": "Refund", "items": items},
        status="done",
        feed_id=feed_id,
        result_code="0",
    )
    stored_action(
        url,
        case_id,
        "refund:302-0000000-0000451:2",
        kind="refund",
        feed_type="POST_PAYMENT_ADJUSTMENT_DATA",
        marketplace_id="A1PA6795UKMFR9",
        payload={"order_id": "302-0000000-0000451", "action_type": "Refund", "items": items[1:]},
        status="failed",
        feed_id=feed_id,
        result_code="18028",
        result_message="The refund amount exceeds what was paid",
    )
    return case_id


def jp_refund(url: str) -> int:
    order = order_of("250-0000000-0000452", "TEA-JP", "田中", marketplace_id="A1VC38T7YXB528")
    order["value"] = {"amount": "1500", "currency": "JPY"}
    case_id = closed_case(
        url,
        "250-0000000-0000452",
        "keep-item-refunded",
        type="return-request",
        marketplace_id="A1VC38T7YXB528",
        order_snapshot=order,
    )
    stored_action(
        url,
        case_id,
        "refund:250-0000000-0000452:1",
        kind="refund",
        feed_type="POST_PAYMENT_ADJUSTMENT_DATA",
        marketplace_id="A1VC38T7YXB528",
        payload={
            "order_id": "250-0000000-0000452",
            "items": [
                {
                    "order_item_id": "JP-1",
                    "reason": "CustomerReturn",
                    "components": [{"type": "Principal", "amount": "1500", "currency": "JPY"}],
                }
            ],
        },
        status="pending",
    )
    return case_id


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_henpin_export_refunds_gives_exact_minor_units_per_component(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = refunded_case(store_url)
    jp_refund(store_url)
    out = tmp_path / "refunds.csv"
    day = DAY.isoformat()
    code = henpin(
        ["export", "refunds", "--from", day, "--to", day, "--marketplace", "DE", "--out", str(out)]
    )
    assert code == 0
    assert "3 refunds row(s) written to" in capsys.readouterr().err
    text = out.read_text(encoding="utf-8")
    assert text.startswith("case_id,order_id,marketplace_id,marketplace,refund_key,queued_at,")
    rows = read_csv(text)
    assert [(r["refund_key"], r["order_item_id"]) for r in rows] == [
        ("refund:302-0000000-0000451:1", "OI-1"),
        ("refund:302-0000000-0000451:1", "OI-2"),
        ("refund:302-0000000-0000451:2", "OI-2"),
    ]
    first = rows[0]
    assert first["case_id"] == str(case_id) and first["marketplace"] == "DE"
    assert (first["currency"], first["Principal_minor"], first["Shipping_minor"]) == (
        "EUR",
        "2999",
        "490",
    )
    assert (first["RestockingFee_minor"], first["PromotionPrincipal_minor"]) == ("-300", "-1")
    assert first["Tax_minor"] == "0" and first["total_minor"] == "3188"  # 29.99+4.90-3.00-0.01
    assert (first["reason"], first["status"], first["amazon_feed_id"], first["feed_status"]) == (
        "CustomerReturn",
        "done",
        "50001019999",
        "done",
    )
    refused = rows[2]
    assert (refused["status"], refused["result_code"], refused["total_minor"]) == (
        "failed",
        "18028",
        "10",
    )
    assert refused["result_message"] == "The refund amount exceeds what was paid"

    # Yen have no minor unit; standard output when there is no --out.
    assert henpin(["export", "refunds", "--from", day, "--to", day, "--marketplace", "JP"]) == 0
    [jp] = read_csv(capsys.readouterr().out)
    assert (jp["currency"], jp["Principal_minor"], jp["total_minor"], jp["status"]) == (
        "JPY",
        "1500",
        "1500",
        "pending",
    )
    assert jp["amazon_feed_id"] == "" and jp["feed_status"] == ""

    logged = audit_rows(store_url, "exported")
    assert [(a.target, a.detail["marketplace"], a.detail["rows"]) for a in logged] == [
        ("refunds", "A1PA6795UKMFR9", 3),
        ("refunds", "A1VC38T7YXB528", 1),
    ]
    assert all(a.actor.startswith("cli:") for a in logged)


def test_henpin_export_cases_gives_outcome_money_and_decision(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = refunded_case(store_url)
    jp = jp_refund(store_url)
    day = DAY.isoformat()
    assert henpin(["export", "cases", "--from", day, "--to", day]) == 0
    rows = {r["case_id"]: r for r in read_csv(capsys.readouterr().out)}
    de = rows[str(case_id)]
    assert (de["outcome"], de["currency"], de["order_value_minor"]) == (
        "refunded-partly",
        "EUR",
        "3499",
    )
    assert (de["refunded_minor"], de["refund_pending_minor"]) == ("3198", "0")  # the failed one not
    assert (de["decision"], de["decided_by"], de["decision_source"]) == (
        "refund_other_amount",
        "alice",
        "inbox",
    )
    assert (rows[str(jp)]["order_value_minor"], rows[str(jp)]["refund_pending_minor"]) == (
        "1500",
        "1500",
    )
    assert henpin(["export", "cases", "--from", "2020-01-01", "--to", "2020-01-31"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "case_id,case_type,order_id,marketplace_id,marketplace,state,outcome,opened_at,closed_at,"
        "recommended,rule,decision,decided_by,decision_source,decided_at,currency,"
        "order_value_minor,refunded_minor,refund_pending_minor,needs_attention"
    ]  # a period with nothing: the header alone


def test_henpin_export_refuses_a_bad_period_or_marketplace(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert henpin(["export", "cases", "--from", "2026-02-01", "--to", "2026-01-01"]) == 2
    assert "ends (2026-01-01) before it starts" in capsys.readouterr().err
    assert (
        henpin(
            [
                "export",
                "refunds",
                "--from",
                "2026-01-01",
                "--to",
                "2026-01-31",
                "--marketplace",
                "XX",
            ]
        )
        == 2
    )
    assert "unknown marketplace" in capsys.readouterr().err
    assert henpin(["export", "refunds", "--from", "yesterday", "--to", "2026-01-31"]) == 2
    assert audit_rows(store_url, "exported") == []
    with pytest.raises(SystemExit):
        henpin(["export", "--help"])
    helped = capsys.readouterr().out
    assert "docs/exports.md" in helped and "--marketplace" in helped


def test_the_export_reads_the_same_on_both_databases(case_store: str) -> None:
    case_id = refunded_case(case_store)
    made = export(
        case_store,
        "refunds",
        Period(DAY, DAY),
        "A1PA6795UKMFR9",
        by="cli:test",
        where="cli",
        check_role=False,
    )
    rows = read_csv(made.text)
    assert [(r["order_item_id"], r["total_minor"], r["status"]) for r in rows] == [
        ("OI-1", "3188", "done"),
        ("OI-2", "10", "done"),
        ("OI-2", "10", "failed"),
    ]
    [case] = read_csv(
        export(
            case_store,
            "cases",
            Period(DAY, DAY),
            "DE",
            by="cli:test",
            where="cli",
            check_role=False,
        ).text
    )
    assert (case["case_id"], case["refunded_minor"], case["order_value_minor"]) == (
        str(case_id),
        "3198",
        "3499",
    )
    assert made.file_name == f"henpin-refunds-DE-{DAY:%Y%m%d}-{DAY:%Y%m%d}.csv"


def test_minor_units_are_exact_or_refused() -> None:
    assert to_minor_units("12.50", "USD") == 1250 and to_minor_units("1500", "JPY") == 1500
    assert to_minor_units("-0.01", "EUR") == -1
    with pytest.raises(ValueError):
        to_minor_units("12.345", "USD")
    with pytest.raises(ValueError):
        to_minor_units("1500.5", "JPY")


def test_an_operator_exports_from_the_inbox_and_each_export_is_audited(store_url: str) -> None:
    refunded_case(store_url)
    at = signed_in()
    at.radio(key="export.kind").set_value("refunds")
    at.date_input(key="export.from").set_value(DAY)
    at.date_input(key="export.to").set_value(DAY)
    at.selectbox(key="export.marketplace").set_value("A1PA6795UKMFR9")
    at.button(key="export.make").click().run()
    assert not at.exception
    download = at.download_button(key="export.download")
    assert download.label == f"Download henpin-refunds-DE-{DAY:%Y%m%d}-{DAY:%Y%m%d}.csv (3 rows)"
    [logged] = audit_rows(store_url, "exported")
    assert (logged.actor, logged.target, logged.detail["rows"]) == ("alice", "refunds", 3)
    assert logged.detail["from"] == DAY.isoformat() and logged.source.startswith("inbox")

    at.date_input(key="export.from").set_value(DAY + timedelta(days=1))
    at.button(key="export.make").click().run()
    assert "The period ends before it starts." in texts(at)
    assert len(audit_rows(store_url, "exported")) == 1  # nothing made, nothing audited
