"""The inbox's words and figures: every language has every text, every page reads right in every
language, and times and money read right."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import get_args

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from henpin import accounts
from henpin.accounts import AuditAction
from henpin.app import metrics
from henpin.app.cases import SortOrder
from henpin.app.claims import ClaimCode
from henpin.app.decide import DecisionCode
from henpin.cases.address_error import resolution_question
from henpin.cases.cancel_request import cancel_request_question
from henpin.cases.money import RefundFit, over_paid_message
from henpin.cases.parcels import refunded_flag
from henpin.cases.refund_outcomes import refund_held_flag, refund_held_question
from henpin.cases.return_request import (
    condition_question,
    inspection_overdue,
    proposal_for_condition,
    refund_question,
)
from henpin.context import Context, install, store_url
from henpin.decisions import REFUSED_ANSWER_EVENT
from henpin.domain import (
    ActionKind,
    ActionStatus,
    AdjustmentReason,
    CaseState,
    CaseType,
    FulfillmentStatus,
    Money,
    Order,
    OrderItem,
    Outcome,
    ReturnRequest,
)
from henpin.housekeeping import CANCELLED_EVENT, RESTART_EVENT, record_cancelled_run
from henpin.languages import marketplace_locale, operator_time_zone
from henpin.money import from_minor_units
from henpin.outbox import states as outbox_states
from henpin.policy import load_policy
from henpin.policy.address_error import AddressErrorAction, OptionMoney
from henpin.policy.cancel_by_message import CancelByMessageAction
from henpin.policy.cancel_request import CancelRequestAction
from henpin.policy.reasons import (
    ATTENTION_EN,
    EXPLANATIONS_EN,
    MONEY_NOTES_EN,
    REASONS_EN,
    VALUE_WORDS_EN,
    reason_text,
)
from henpin.policy.refused_delivery import RefusedDeliveryAction
from henpin.policy.return_request import ReturnAction
from henpin.questions import PROMPTS_EN, TITLES_EN, Question
from henpin.runs import RunState
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Decision
from tasks.cases import flag_attention, mark_waiting, record_recommendation
from tests.test_inbox_support import (
    PAGES,
    REPO_POLICIES,
    address_error_case,
    app,
    cancel_order,
    closed_case,
    fresh_store,
    on_page,
    refund_action,
    set_operator,
    signed_in,
    table_text,
    waiting_case,
)
from ui import display
from ui.i18n import DEFAULT_LANGUAGE, LANGUAGES, TEXT, translate

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
POLICY_ACTIONS = (
    CancelRequestAction,
    ReturnAction,
    AddressErrorAction,
    CancelByMessageAction,
    RefusedDeliveryAction,
)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_every_language_has_every_text_with_the_same_placeholders(lang: str) -> None:
    english = TEXT[DEFAULT_LANGUAGE]
    assert set(TEXT[lang]) == set(english)
    for key, template in english.items():
        assert placeholders(TEXT[lang][key]) == placeholders(template), key


def test_every_outcome_has_a_plain_name() -> None:
    for outcome in Outcome:
        assert f"outcome.{outcome.value}" in TEXT[DEFAULT_LANGUAGE]


def test_a_missing_text_falls_back_to_english_then_to_its_key() -> None:
    assert translate("fr", "inbox.title") == "Inbox"
    assert translate("en", "no.such.key") == "no.such.key"


@pytest.mark.parametrize(
    ("due_in", "shown"),
    [
        (timedelta(days=2, hours=3, minutes=5), "2 d 3 h left"),
        (timedelta(hours=5, minutes=10), "5 h 10 min left"),
        (timedelta(hours=1, minutes=30), ":orange[**1 h 30 min left**]"),
        (timedelta(seconds=20), ":orange[**less than a minute left**]"),
        (timedelta(minutes=-45), ":red[**overdue by 45 min**]"),
        (timedelta(days=-1), ":red[**overdue by 1 d**]"),
    ],
)
def test_time_left_before_a_deadline(due_in: timedelta, shown: str) -> None:
    assert display.time_left(NOW + due_in, NOW) == shown


def test_money_and_timestamps() -> None:
    assert display.money({"amount": "1234", "currency": "JPY"}) == "￥1,234"
    assert display.money(None) == "—"
    assert display.at_text("2026-03-02T08:15:00Z") == "2026-03-02 08:15 UTC"
    assert display.at_text("not a time") == "not a time"


def test_outside_text_cannot_format_the_page() -> None:
    shown = display.plain("![x](http://tracker.example/p.png) :red[urgent] $x$")
    assert shown == "!\\[x\\](http\u2060://tracker.example/p.png) :red\\[urgent\\] \\$x\\$"


def test_outside_text_has_no_autolinks() -> None:
    """GFM links bare URLs and e-mail addresses even when escaped: each is broken by an
    invisible word joiner, and reads the same."""
    shown = display.plain("See https://evil.example, www.evil.example or mail a.b@evil.example")
    assert "https://" not in shown and "www." not in shown and "b@" not in shown
    assert shown.replace("\u2060", "") == (
        "See https://evil.example, www.evil.example or mail a.b@evil.example"
    )


# --- every text the pages ask for exists, and every page reads right in every language ------------

UI = Path(__file__).parents[1] / "ui"
KEY_LIKE = re.compile(
    r"\b(?:" + "|".join(sorted({k.split(".")[0] for k in TEXT["en"]})) + r")\.[a-z_][a-z0-9_.-]*"
)


def test_every_text_the_pages_name_exists() -> None:
    named = {
        m.group(1)
        for path in UI.rglob("*.py")
        if path.name != "i18n.py"  # its docstring shows t("key", ...)
        for m in re.finditer(r'\bt\(\s*"([a-z0-9_.-]+)"', path.read_text())
    }
    assert named and not named - set(TEXT[DEFAULT_LANGUAGE])


def test_every_code_a_result_can_carry_has_words() -> None:
    refusals = set(
        re.findall(r'AccountRefused\(\s*"([a-z-]+)"', Path(accounts.__file__).read_text())
    )
    keys = (
        [f"decision.{c.value}" for c in DecisionCode]
        + [f"claim.{c.value}" for c in ClaimCode]
        + [f"account.{code}" for code in refusals]
        + [f"sort.{s.value}" for s in SortOrder]
        + [f"dash.age.{name}" for name, _ in metrics.AGE_BUCKETS]
        + [f"case_type.{c.value}" for c in CaseType]
        + [f"state.{s.value}" for s in CaseState]
        + [f"role.{r}" for r in accounts.ROLES]
    )
    assert len(refusals) >= 6
    assert [k for k in keys if k not in TEXT[DEFAULT_LANGUAGE]] == []


def shown(at: AppTest) -> str:
    """Every word a page shows: texts, messages, widget labels and options, table headers."""
    parts = [str(e.value) for e in [*at.markdown, *at.caption, *at.title, *at.subheader]]
    parts += [str(e.value) for e in [*at.info, *at.success, *at.warning, *at.error]]
    parts += [str(e.label) for e in [*at.button, *at.text_input, *at.text_area, *at.checkbox]]
    for widget in [*at.selectbox, *at.multiselect, *at.radio]:
        parts += [str(widget.label), *map(str, widget.options)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [" ".join(map(str, d.value.columns)) for d in at.dataframe]
    return "\n".join(parts)


ENGLISH_ONLY = sorted(
    {v for k, v in TEXT["en"].items() if v != TEXT["ja"][k] and "{" not in v and " " in v.strip()},
    key=len,
    reverse=True,
)


@pytest.fixture
def busy_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    """A store with something on every page: waiting and closed cases, money, audit lines."""
    url = fresh_store(tmp_path, monkeypatch)
    set_operator(url, "alice", role="admin")
    waiting_case(url, "111-0000000-0000601", timedelta(minutes=-5))
    case_id = address_error_case(url, "302-0000000-0000602")
    closed = closed_case(url, "302-0000000-0000603", "refunded-partly", type="return-request")
    refund_action(url, closed, "k1", "CustomerReturn", "12.00")
    return url, case_id


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
@pytest.mark.parametrize("page", ["login", *PAGES])
def test_every_page_in_every_language(busy_store: tuple[str, int], page: str, lang: str) -> None:
    url, case_id = busy_store
    set_operator(url, "alice", language=lang)
    if page == "login":
        at = app().run()
        at.session_state["lang"] = lang
        at = at.run()
    else:
        at = on_page(signed_in(), page, case=str(case_id))
    if page == "bulk":  # the preview too
        at.selectbox(key="bulk.type").set_value("address-error").run()
        at.button(key="bulk.select_all").click().run()
        at.radio(key="bulk.choice").set_value("escalate")
        at.button(key="bulk.preview_button").click().run()
        assert at.dataframe
    assert not at.exception
    words = shown(at)
    assert not KEY_LIKE.findall(words), "a text key shows instead of its words"
    if lang != DEFAULT_LANGUAGE:
        leaked = [english for english in ENGLISH_ONLY if english in words]
        assert not leaked, f"English left on the {lang} {page} page"


# --- issue 13: codes have words in both languages, money and times read as the operator reads ----

JP, US, DE, UK = "A1VC38T7YXB528", "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1F83G8C2ARO7P"
SOURCES = [Path(__file__).parents[1] / d for d in ("henpin", "tasks", "flows")]


def event_kinds() -> set[str]:
    """Every timeline kind the code records: literal `kind="..."`, and the named constants and
    enums it records under."""
    kinds: set[str] = set()
    for folder in SOURCES:
        for path in folder.rglob("*.py"):
            kinds |= set(re.findall(r'\bkind="([a-z-]+)"', path.read_text()))
    kinds |= {REFUSED_ANSWER_EVENT, RESTART_EVENT, CANCELLED_EVENT}
    kinds |= {a.value for a in AuditAction if a.value in ("claim", "release")}
    kinds |= {"decision", "recommendation", "message-settled", "feed-settled", "case-opened"}
    kinds -= {"money", "text", "option", "integer"}  # answer field kinds, not events
    return kinds


def policy_input_keys() -> set[str]:
    """The names of the facts each policy's rules look at (a recommendation's `inputs`)."""
    keys: set[str] = set()
    for path in (Path(__file__).parents[1] / "henpin" / "policy").glob("*.py"):
        text = path.read_text()
        for block in re.findall(r"inputs(?:: Inputs)? = \{(.*?)\n        \}", text, re.S):
            keys |= set(re.findall(r'"([a-z_]+)":', block))
        for block in re.findall(r"def _inputs.*?return \{(.*?)\n    \}", text, re.S):
            keys |= set(re.findall(r'"([a-z_]+)":', block))
        keys |= set(re.findall(r'inputs\["([a-z_]+)"\]', text))
    assert len(keys) >= 25, "the scan no longer finds the policies' inputs"
    return keys


def labelled_codes() -> dict[str, list[str]]:
    """Every code a page can show, by where it comes from, as the text keys that word it."""
    actions = {a for alias in POLICY_ACTIONS for a in get_args(alias)}
    return {
        "outcomes": [f"outcome.{o.value}" for o in Outcome],
        "reasons": [f"reason.{code}" for code in REASONS_EN],
        "policy actions": [f"choice.{a}" for a in sorted(actions)],
        "event kinds": [f"event_kind.{k}" for k in sorted(event_kinds())],
        "money columns": [
            f"money.{name}" for name in OptionMoney.model_fields if name not in ("choice", "label")
        ],
        "order statuses": [f"order_status.{s.value}" for s in FulfillmentStatus],
        "refund reasons": [f"adjustment.{r.value}" for r in AdjustmentReason],
        "outbox actions": [f"action.{k.value}" for k in ActionKind],
        "action statuses": [f"action_status.{s.value}" for s in ActionStatus],
        "case types": [f"case_type.{c.value}" for c in CaseType],
        "case states": [f"state.{s.value}" for s in CaseState],
        "reason values": [f"value.{v}" for v in VALUE_WORDS_EN],
        "facts a rule looked at": [f"input.{k}" for k in sorted(policy_input_keys())],
        "question titles": [f"question.{code}" for code in TITLES_EN],
        "prompt lines": [f"prompt.{code}" for code in PROMPTS_EN],
        "needs-attention reasons": [f"attention.{code}" for code in ATTENTION_EN],
        "money table notes": [f"money_note.{code}" for code in MONEY_NOTES_EN],
        "refund explanations": [f"explanation.{code}" for code in EXPLANATIONS_EN],
    }


def test_every_key_in_english_has_a_japanese_text() -> None:
    assert sorted(set(TEXT["en"]) - set(TEXT["ja"])) == []
    assert [k for k, v in TEXT["ja"].items() if not v.strip()] == []


@pytest.mark.parametrize("source", sorted(labelled_codes()))
def test_every_code_a_page_shows_has_words_in_both_languages(source: str) -> None:
    keys = labelled_codes()[source]
    assert keys
    for lang in ("en", "ja"):
        missing = [k for k in keys if k not in TEXT[lang]]
        assert missing == [], f"{source} without {lang} words"
    assert len(event_kinds()) >= 12  # the scan found the kinds the flows record
    # The money table's columns read as words, not as the field names
    assert translate("ja", "money.refund_to_buyer") == "お客様への返金額"
    assert translate("en", "money.item_price") == "Item price"


@pytest.mark.parametrize(
    ("value", "marketplace", "shown"),
    [
        ({"amount": "1500", "currency": "JPY"}, JP, "￥1,500"),
        ({"amount": "45000", "currency": "JPY"}, None, "￥45,000"),
        ({"amount": "1234.50", "currency": "USD"}, US, "$1,234.50"),
        ({"amount": "1234.5", "currency": "EUR"}, DE, "1.234,50\xa0€"),
        ({"amount": "12", "currency": "GBP"}, UK, "£12.00"),
        # exact: an amount is never shown with fewer decimals than it has
        ({"amount": "1500.5", "currency": "JPY"}, JP, "￥1,500.5"),
    ],
)
def test_money_reads_as_in_its_marketplace(
    value: dict[str, str], marketplace: str | None, shown: str
) -> None:
    assert display.money(value, marketplace) == shown


def test_minor_units_convert_exactly() -> None:
    assert from_minor_units(150050, "USD") == Decimal("1500.50")
    assert from_minor_units(1500, "JPY") == Decimal("1500")
    assert display.money_of(from_minor_units(1500, "JPY"), "JPY", JP) == "￥1,500"
    assert display.money_of(from_minor_units(1, "USD"), "USD", US) == "$0.01"


def test_an_operator_reads_times_in_their_time_zone() -> None:
    assert operator_time_zone("ja") == "Asia/Tokyo"
    assert operator_time_zone("en") == "UTC"
    assert operator_time_zone("ja", "Europe/Berlin") == "Europe/Berlin"
    assert marketplace_locale(JP) == "ja_JP" and marketplace_locale(UK) == "en_GB"


def jp_order(total: str = "45000") -> Order:
    return Order(
        order_id="250-0000000-0000777",
        marketplace_id=JP,
        created_time=NOW - timedelta(hours=3),
        last_updated_time=NOW - timedelta(hours=3),
        fulfillment_status=FulfillmentStatus.UNSHIPPED,
        fulfilled_by="MERCHANT",
        items=[
            OrderItem(
                order_item_id="item-1",
                sku="TEAPOT-01",
                unit_price=Money(amount=Decimal(total), currency="JPY"),
                cancel_requested_by_buyer=True,
                buyer_cancel_reason="間違えて注文しました",
            )
        ],
    )


def test_a_reason_keeps_its_english_words_and_adds_its_code_and_values() -> None:
    """The stored/exported recommendation is extended, not changed: `reason` is the English
    words as before, and `reason_code`/`reason_values` word it again, in any language."""
    rec = load_policy(REPO_POLICIES).cancel_request.recommend(jp_order(), NOW)
    assert rec.reason == "rule high-value: order value 45,000 JPY is over the 30,000 JPY limit"
    assert rec.reason_code == "rule-matched"
    assert reason_text(rec.reason_code, rec.reason_values) == rec.reason
    stored = rec.model_dump(mode="json")
    assert {"action", "rule", "reason", "inputs", "reason_code", "reason_values"} <= set(stored)
    assert stored["reason_values"]["conditions"][0]["values"]["value"] == {
        "amount": "45000",
        "currency": "JPY",
    }


@pytest.fixture
def jp_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    """A Japanese cancel request waiting for an operator, recommended and put to wait by the
    flow's own tasks (so its timeline is what a flow writes)."""
    url = fresh_store(tmp_path, monkeypatch)
    install(Context())  # the tasks read this test's store
    order = jp_order()
    snapshot = {
        **cancel_order(order.order_id, JP),
        "value": {"amount": "45000", "currency": "JPY"},
        "items": [
            {
                "sku": "TEAPOT-01",
                "title": "Tetsubin teapot",
                "quantity": 1,
                "unit_price": {"amount": "45000", "currency": "JPY"},
            }
        ],
    }
    case_id = waiting_case(
        url, order.order_id, timedelta(hours=5), marketplace_id=JP, order_snapshot=snapshot
    )
    rec = load_policy(REPO_POLICIES).cancel_request.recommend(order, NOW)
    record_recommendation.fn(case_id, order, rec.model_dump(mode="json"), "test-policy")
    question = cancel_request_question(
        order, rec.model_dump(mode="json"), deadline_hours=24, timeout_choice="cancel"
    )
    mark_waiting.fn(case_id, question)
    return url, case_id


def test_a_japanese_operator_reads_reason_timeline_money_and_times_in_japanese(
    jp_case: tuple[str, int],
) -> None:
    url, case_id = jp_case
    set_operator(url, "alice", language="ja")
    at = on_page(signed_in(), "case", case=str(case_id))
    assert not at.exception
    words = shown(at)
    # the recommendation's reason, worded from its code, with yen as amazon.co.jp writes them
    assert "注文金額 ￥45,000 が上限 ￥30,000 を超えています" in words
    assert "ルール high-value" in words
    assert "order value 45,000 JPY" not in words
    # timeline entries the flow wrote, in Japanese
    assert "ポリシーの推奨: **オペレーターが判断**" in words
    assert "オペレーターの判断待ち（期限" in words
    assert "Policy recommends 'ask_operator'" not in words
    # the question as the flow asked it, worded from its codes
    assert "**購入者が注文 250-0000000-0000777 のキャンセルを依頼**" in words
    assert "- 購入者の理由: 間違えて注文しました" in words
    assert "- ステータス: 未発送" in words
    # the order value in yen format; times in Japan time, UTC in the tooltip
    assert "￥45,000" in words
    assert " JST" in words
    assert any("UTC" in str(m.help or "") for m in at.markdown)
    # switching to UTC shows UTC times
    at.sidebar.toggle(key=display.UTC_TOGGLE).set_value(True).run()
    assert " JST" not in shown(at) and " UTC" in shown(at)


def test_an_english_operator_reads_the_same_case_in_english(jp_case: tuple[str, int]) -> None:
    _, case_id = jp_case
    at = on_page(signed_in(), "case", case=str(case_id))
    words = shown(at)
    assert "rule high-value: order value ￥45,000 is over the ￥30,000 limit" in words
    assert "Policy recommends **Ask an operator**" in words
    assert " UTC" in words and " JST" not in words


def test_a_question_keeps_its_english_words_and_its_lines() -> None:
    """`title` and `prompt` (what the CLI, the Prefect UI and old readers show) are the English
    words they always were; the codes come with them and survive the store's round trip."""
    order = jp_order()
    rec = load_policy(REPO_POLICIES).cancel_request.recommend(order, NOW)
    q = cancel_request_question(
        order, rec.model_dump(mode="json"), deadline_hours=24, timeout_choice="cancel"
    )
    assert q.title == "Buyer asked to cancel order 250-0000000-0000777"
    assert q.prompt.splitlines() == [
        "- Order: 250-0000000-0000777 (Amazon.co.jp)",
        "- Status: UNSHIPPED",
        "- Value: 45,000 JPY",
        "- Items: 1 × TEAPOT-01",
        "- Buyer's reason: 間違えて注文しました",
        "- Policy recommends **ask_operator** (rule `high-value`): " + rec.reason,
    ]
    assert [x.code for x in q.prompt_lines][:3] == ["order", "status", "value"]
    assert Question.model_validate(q.model_dump(mode="json")) == q


def test_a_reason_stored_without_a_code_still_shows(busy_store: tuple[str, int]) -> None:
    """Rows stored before reasons had codes show their English words as they were written."""
    url, _ = busy_store
    old = waiting_case(url, "111-0000000-0000999", timedelta(hours=3))
    set_operator(url, "alice", language="ja")
    at = on_page(signed_in(), "case", case=str(old))
    assert not at.exception
    assert "Order value 249.90 USD is above the 100.00 USD automatic limit." in shown(at)


# --- issue 13, its last gap: why a case needs attention, the money table's notes and how a
# refund proposal was reached are kept as codes and values, and read in the operator's language


def over_paid_fit(by_amazon: str | None = None, sent: str | None = "10.00") -> RefundFit:
    def eur(amount: str) -> Money:
        return Money(amount=Decimal(amount), currency="EUR")

    return RefundFit(
        asked=eur("40.00"),
        refund=None,
        sent=eur(sent) if sent else None,
        by_amazon=eur(by_amazon) if by_amazon else None,
        before=eur("30.00"),
    )


def test_each_needs_attention_reason_keeps_its_english_words() -> None:
    """`needs_attention` (the CLI's --json, the exports, the notifications' fingerprint) reads
    as it always did; the code and values come beside it."""
    report = {
        "kind": "refused",
        "source": "amazon",
        "status": "ReturnToSeller",
        "detailed_status": "Rejected",
    }
    flag = refunded_flag(report, "refunded-partly")
    assert flag.text == (
        "Amazon reports the parcel as ReturnToSeller/Rejected: the buyer refused it, after this"
        " case refunded the buyer (refunded-partly). Henpin opened no new parcel case, so"
        " nothing is refunded twice: check the order in Seller Central."
    )
    assert (flag.kind, flag.code) == ("attention", "parcel-after-refund")
    assert over_paid_message(over_paid_fit()).text == (
        "Refund of 40.00 EUR asked, but 30.00 EUR was already refunded on these items by another"
        " case of the order: together more than the buyer paid, so only 10.00 EUR was sent."
        " Check the order's refunds."
    )
    assert over_paid_message(over_paid_fit("30.00", None)).text == (
        "Refund of 40.00 EUR asked, but 30.00 EUR was already refunded on these items (30.00"
        " EUR by Amazon): together more than the buyer paid, so nothing was sent. Check the"
        " order's refunds."
    )
    held = refund_held_flag(3, "HENPIN_REFUNDED_ALREADY", "Paid 10.00 EUR.")
    assert refund_held_question(jp_order(), held, 1).prompt == held.text
    assert held.text == (
        "Refund held back by Henpin at 3 checks in a row (HENPIN_REFUNDED_ALREADY), never sent"
        " to Amazon: Paid 10.00 EUR. Look at the order's refunds in Seller Central, then check"
        " again or escalate."
    )
    assert inspection_overdue(jp_order()).text == (
        "Nobody recorded the condition of the item returned on order 250-0000000-0000777 in"
        " time; its refund is owed (Amazon may refund on your behalf): inspect it now."
    )


def test_the_money_notes_and_refund_explanations_keep_their_english_words() -> None:
    policy = load_policy(REPO_POLICIES)
    reship, partial, full = policy.address_error.options_money(jp_order())
    assert reship.notes[0] == "referral fee estimated at 15% of price and shipping"
    assert partial.notes[-1] == (
        "refunds 80% of the item price paid (less any promotion); the buyer's shipping is kept"
    )
    assert full.notes[-2:] == [
        "refunds what the buyer paid, price and shipping, less any promotion",
        "the buyer's new order is a new sale, not counted here",
    ]
    assert [n["code"] for n in partial.note_phrases] == [
        "referral-fee-estimated",
        "shipping-unknown",
        "partial-refund",
    ]
    options = [o.model_dump(mode="json") for o in (reship, partial, full)]
    asked = resolution_question(jp_order(), policy.address_error, options).prompt
    assert "notes: ['referral fee estimated at 15% of price and shipping'" in asked
    assert "note_phrases" not in asked  # the question's English prompt is as it was
    item = jp_order().items[0]
    used = policy.return_request.refund_for_condition(item, "used", 1, country="JP")
    assert used.explanation == "used: 100% of 45,000 JPY, less a 20% restocking fee"
    assert used.explanation_code == "condition"
    refused = policy.refused_delivery.refund_for(jp_order(), refused=True)
    assert refused.explanation == (
        "parcel refused by the buyer: the item price paid (less any promotion) only (outbound"
        " shipping kept), reason RefusedDelivery"
    )
    assert refused.items[0].explanation == (
        "45,000 JPY: the item price paid (less any promotion) only (outbound shipping kept)"
    )


@pytest.fixture
def jp_flagged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Japanese cases as the flows and the outbox leave them: an address error flagged by
    Amazon's rejection (with the money of each way out), a return waiting for its refund to
    be confirmed and flagged overdue, a refused delivery recommending the buyer's refund."""
    url = fresh_store(tmp_path, monkeypatch)
    install(Context())
    policy = load_policy(REPO_POLICIES)
    order = jp_order()
    snapshot = {**cancel_order(order.order_id, JP), "value": {"amount": "45000", "currency": "JPY"}}

    address = waiting_case(
        url,
        "250-0000000-0000801",
        timedelta(hours=20),
        type="address-error",
        marketplace_id=JP,
        recommendation={},
        order_snapshot=snapshot,
        details={
            "options": [
                o.model_dump(mode="json") for o in policy.address_error.options_money(order)
            ]
        },
    )
    with session_scope(url) as s:
        rejected = Action(
            case_id=address,
            key="a-801",
            kind="cancel-order",
            result_code="ERROR_99",
            result_message=None,
        )
        outbox_states._flag_rejected(s, rejected)

    ret = ReturnRequest(order_id=order.order_id, order_item_id="item-1", reason_code=None)
    returned = waiting_case(
        url,
        "250-0000000-0000802",
        timedelta(hours=20),
        type="return-request",
        marketplace_id=JP,
        recommendation={},
        order_snapshot=snapshot,
    )
    proposal = proposal_for_condition(ret, order, policy.return_request, "used")
    mark_waiting.fn(
        returned,
        refund_question(ret, order, policy.return_request, proposal, NOW + timedelta(days=2)),
    )
    flag_attention.fn(returned, inspection_overdue(order))

    refused = waiting_case(
        url,
        "250-0000000-0000803",
        timedelta(hours=20),
        type="refused-delivery",
        marketplace_id=JP,
        recommendation={},
        order_snapshot=snapshot,
    )
    rec = policy.refused_delivery.recommend(order, refused=True, buyer_asked=True, now=NOW)
    record_recommendation.fn(refused, order, rec.model_dump(mode="json"), "test-policy")

    held = waiting_case(
        url,
        "250-0000000-0000804",
        timedelta(hours=8),
        type="return-request",
        marketplace_id=JP,
        recommendation={},
        order_snapshot=snapshot,
    )
    flag = refund_held_flag(3, "HENPIN_WOULD_OVERPAY", "Paid 45,000 JPY; refunded 45,000 JPY.")
    flag_attention.fn(held, flag)
    mark_waiting.fn(held, refund_held_question(order, flag, 1))
    return {"address": address, "return": returned, "refused": refused, "held": held}


def case_page(case_id: int) -> tuple[AppTest, str]:
    at = on_page(signed_in(), "case", case=str(case_id))
    assert not at.exception
    cells = "\n".join(str(d.value.to_string()) for d in at.dataframe)
    return at, shown(at) + "\n" + cells


def test_a_japanese_operator_reads_attention_money_notes_and_explanations_in_japanese(
    jp_flagged: dict[str, int],
) -> None:
    set_operator(store_url(), "alice", language="ja")
    _, words = case_page(jp_flagged["address"])
    assert "要確認: Amazon が注文キャンセルを拒否しました（ERROR\\_99）: 説明なし" in words
    assert "販売手数料は商品代金と送料の 15% と見積もっています" in words
    assert "お客様と合意のうえ" not in words  # a choice's label, not a note
    assert "支払われた商品代金（プロモーション割引後）の 80% を返金します" in words
    assert "Amazon rejected" not in words and "no description" not in words
    assert "referral fee estimated" not in words and "the buyer's new order" not in words

    _, words = case_page(jp_flagged["return"])
    assert "返品された商品の状態が期限内に記録されませんでした" in words
    assert "￥45,000 の 100%、返品手数料（restocking fee）20% を差し引き" in words
    assert "Nobody recorded" not in words and "less a 20% restocking fee" not in words

    _, words = case_page(jp_flagged["held"])
    held = "Henpin が 3 回続けて返金を保留しました（HENPIN\\_WOULD\\_OVERPAY）。Amazon には送っていません"
    assert words.count(held) >= 2  # the banner and the question
    assert "Refund held back by Henpin" not in words

    _, words = case_page(jp_flagged["refused"])
    assert "お客様が受取を拒否した荷物: 支払われた商品代金（プロモーション割引後）のみ" in words
    assert "parcel refused by the buyer" not in words and "outbound shipping" not in words

    at = signed_in()
    listed_words = table_text(at)
    assert "要確認: Amazon が注文キャンセルを拒否しました" in listed_words
    assert "要確認: 注文 250-0000000-0000777 で返品された商品" in listed_words
    assert "Amazon rejected" not in listed_words and "Nobody recorded" not in listed_words


def test_an_english_operator_reads_them_as_before(jp_flagged: dict[str, int]) -> None:
    _, words = case_page(jp_flagged["address"])
    # the words written when it was flagged, as the English inbox always showed them
    assert "Needs attention: Amazon rejected the cancel-order (ERROR\\_99): no description" in (
        words
    )
    assert "referral fee estimated at 15% of price and shipping" in words
    _, words = case_page(jp_flagged["return"])
    assert "Nobody recorded the condition of the item returned on order" in words
    assert "used: 100% of ￥45,000, less a 20% restocking fee" in words
    _, words = case_page(jp_flagged["refused"])
    assert "parcel refused by the buyer: the item price paid (less any promotion) only" in words
    with session_scope(store_url()) as s:
        flagged = s.get(Case, jp_flagged["address"])
        assert flagged is not None
        assert flagged.needs_attention == (
            "Amazon rejected the cancel-order (ERROR_99): no description"
        )
        assert flagged.needs_attention_reason == {
            "kind": "attention",
            "code": "amazon-rejected",
            "values": {
                "action_kind": "cancel-order",
                "code": "ERROR_99",
                "message": {"kind": "attention", "code": "no-description", "values": {}},
            },
        }
    table = table_text(signed_in())
    assert "Needs attention: Amazon rejected the cancel-order (ERROR_99)" in table


def test_a_run_cancelled_in_prefect_reads_in_the_operators_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flag and the timeline line of a case whose run was cancelled in Prefect."""
    url = fresh_store(tmp_path, monkeypatch)
    install(Context())
    case_id = waiting_case(url, "250-0000000-0000901", timedelta(hours=20), marketplace_id=JP)
    run_id = "00000000-0000-4000-8000-000000000901"
    with session_scope(url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.flow_run_id = run_id
    cancelled = RunState("CANCELLED", "Cancelled", NOW, "")
    assert record_cancelled_run(url, case_id, run_id, cancelled)
    assert not record_cancelled_run(url, case_id, run_id, cancelled)  # once

    _, words = case_page(case_id)
    assert "Needs attention: Its flow run was cancelled in Prefect (Cancelled: no description)" in (
        words
    )
    assert "Run cancelled in Prefect" in words
    set_operator(store_url(), "alice", language="ja")
    _, words = case_page(case_id)
    assert "フローの実行が Prefect で中止されました（Cancelled: 説明なし）" in words
    assert "Amazon への操作 0 件を Henpin が取り下げました" in words
    assert "Prefect で実行を中止" in words
    assert "Its flow run was cancelled" not in words and "Run cancelled in Prefect" not in words


def test_a_condition_shows_the_owners_words_beside_its_name_and_records_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The item-condition question's options are the condition names of policies.yaml; the
    select box shows each with its description there ("damaged_by_buyer — damaged after
    delivery"), and the answer recorded is the name the refund table is keyed by."""
    url = fresh_store(tmp_path, monkeypatch)
    install(Context())
    set_operator(url, "alice")
    policy = load_policy(REPO_POLICIES).return_request
    order = jp_order()
    case_id = waiting_case(
        url,
        "250-0000000-0000805",
        timedelta(hours=20),
        type="return-request",
        marketplace_id=JP,
        recommendation={},
        order_snapshot=cancel_order(order.order_id, JP),
    )
    ret = ReturnRequest(order_id=order.order_id, order_item_id="item-1", reason_code=None)
    mark_waiting.fn(case_id, condition_question(ret, order, policy))

    at, _ = case_page(case_id)
    box = at.selectbox(key=f"decide.{case_id}.field.condition")
    assert box.options == [
        f"{name} — {row.description}" if row.description else name
        for name, row in policy.conditions.items()
    ]
    assert "damaged_by_buyer — damaged after delivery" in box.options
    at.radio(key=f"decide.{case_id}.choice").set_value("inspected")
    box.set_value("damaged_by_buyer")
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert not at.exception and "recorded for case" in at.success[0].value
    with session_scope(url) as s:
        decided = s.scalars(select(Decision).where(Decision.case_id == case_id)).one()
    assert (decided.choice, decided.data) == ("inspected", {"condition": "damaged_by_buyer"})
