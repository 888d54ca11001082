"""policies.yaml, the sections after cancel_request: the shipped file spells out the defaults, and
a bad value in any of them is reported with file, line and key path."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from henpin.policy import (
    AddressErrorPolicy,
    CancelByMessagePolicy,
    NotificationsPolicy,
    Policy,
    PolicyError,
    RefusedDeliveryPolicy,
    RetentionPolicy,
    ReturnRequestPolicy,
    check_policy_file,
    load_policy,
    parse_policy,
)
from henpin.policy.cancel_by_message import LANGUAGES, PLACEHOLDERS

REPO_POLICY = Path(__file__).resolve().parents[1] / "policies.yaml"
SECTIONS = (
    "return_request",
    "cancel_by_message",
    "refused_delivery",
    "address_error",
    "retention",
    "notifications",
)
DEFAULTS = {
    "return_request": ReturnRequestPolicy(),
    "cancel_by_message": CancelByMessagePolicy(),
    "refused_delivery": RefusedDeliveryPolicy(),
    "address_error": AddressErrorPolicy(),
    "retention": RetentionPolicy(),
    "notifications": NotificationsPolicy(),
}


@pytest.fixture(scope="module")
def shipped() -> Policy:
    return load_policy(REPO_POLICY)


# --- The shipped file ---------------------------------------------------------------------------


def test_shipped_file_sets_every_section(shipped: Policy) -> None:
    assert shipped.sections_set() == list(SECTIONS)


@pytest.mark.parametrize("section", SECTIONS)
def test_shipped_file_spells_out_the_defaults(shipped: Policy, section: str) -> None:
    """Leaving a section out gives exactly what the shipped file documents."""
    assert getattr(shipped, section) == DEFAULTS[section]


def test_shipped_file_has_a_reply_in_every_marketplace_language(shipped: Policy) -> None:
    replies = shipped.cancel_by_message.replies
    assert sorted(replies) == sorted(LANGUAGES)
    for template in replies.values():
        assert "{order_id}" in template.body and "{order_id}" in template.reminder_body


def test_check_summary_names_the_sections_the_file_sets() -> None:
    summary = check_policy_file(REPO_POLICY)
    assert "\n" not in summary
    assert "also sets return_request, cancel_by_message, refused_delivery, address_error" in summary


def test_a_file_with_only_cancel_request_gets_every_default(tmp_path: Path) -> None:
    text = "version: 1\ncancel_request:\n  rules:\n    - name: all\n      then: cancel\n"
    policy = parse_policy(text.encode())
    assert policy.sections_set() == []
    for section in SECTIONS:
        assert getattr(policy, section) == DEFAULTS[section]
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    assert "Henpin's defaults for return_request" in check_policy_file(path)


@pytest.mark.parametrize("section", ("cancel_request", *SECTIONS))
def test_each_section_survives_a_trip_through_json(shipped: Policy, section: str) -> None:
    """Flows receive their section as a JSON parameter (Prefect) and validate it back."""
    value = getattr(shipped, section)
    dumped = json.loads(json.dumps(value.model_dump(mode="json")))
    assert type(value).model_validate(dumped) == value


# --- Bad values: file, line and key path ---------------------------------------------------------

SECTIONS_FILE = textwrap.dedent(
    """\
    version: 1
    cancel_request:
      rules:
        - name: all
          then: cancel
    return_request:
      return_window_days: 30
      reasons:
        authorize: [CR-DEFECTIVE]
        decline: [CR-UNWANTED_ITEM]
      authorize_up_to: {USD: 200}
      keep_item_under: {USD: 15}
      operator: {deadline_hours: 24, on_deadline: escalate}
      reminder_after_days: 14
      receipt_wait_days: 30
      conditions:
        used:
          refund_percent: 100
          restocking_fee_percent: 20
      refund_deadline_business_days: 2
    cancel_by_message:
      wait_hours: 48
      reminders: 1
      operator: {deadline_hours: 24, on_deadline: remind}
      replies:
        en:
          unknown_buyer_name: customer
          subject: Order {order_id}
          body: "Hello {buyer_name}, please cancel {order_id} on {marketplace}."
          reminder_subject: "Reminder: order {order_id}"
          reminder_body: "Please cancel {order_id}."
    refused_delivery:
      wait_days: 14
      refund:
        item_price_percent: 100
        refused_reason: RefusedDelivery
    address_error:
      reship_cost: {USD: 15}
      referral_fee_percent: 15
      refund_admin_fee:
        USD: {percent_of_referral_fee: 20, at_most: 5.00}
      partial_refund_percent: 80
    retention:
      buyer_data_days: 90
    notifications:
      waiting:
        every_minutes: 15
    """
)

BAD_VALUES = {
    "window too long": (
        ("return_window_days: 30", "return_window_days: 400"),
        ":7: return_request.return_window_days: Input should be less than or equal to 365"
        " (got 400)",
    ),
    "reason code typo": (
        ("decline: [CR-UNWANTED_ITEM]", "decline: [UNWANTED_ITEM]"),
        ":10: return_request.reasons.decline[0]: Amazon return reason codes look like"
        " CR-DEFECTIVE or AMZ-PG-BAD-DESC (got 'UNWANTED_ITEM')",
    ),
    "reason code in two lists": (
        ("decline: [CR-UNWANTED_ITEM]", "decline: [CR-DEFECTIVE]"),
        ":10: return_request.reasons.decline[0]: CR-DEFECTIVE is also listed under authorize;"
        " a reason code goes in one list only",
    ),
    "value limit in an unknown currency": (
        ("authorize_up_to: {USD: 200}", "authorize_up_to: {USD: 200, UDS: 300}"),
        ":11: return_request.authorize_up_to.UDS: unknown currency 'UDS'",
    ),
    "cheap-item threshold not a number": (
        ("keep_item_under: {USD: 15}", "keep_item_under: {USD: cheap}"),
        ":12: return_request.keep_item_under.USD: Input should be a valid number (got 'cheap')",
    ),
    "return on_deadline not a named path": (
        ("on_deadline: escalate}", "on_deadline: authorize}"),
        ":13: return_request.operator.on_deadline: Input should be 'escalate' (got 'authorize')",
    ),
    "reminder after the wait ends": (
        ("reminder_after_days: 14", "reminder_after_days: 30"),
        ":14: return_request.reminder_after_days: the reminder (30 days) must come before the"
        " wait ends (30 days, receipt_wait_days)",
    ),
    "restocking fee above Amazon's ceiling": (
        ("restocking_fee_percent: 20", "restocking_fee_percent: 25"),
        ":19: return_request.conditions.used.restocking_fee_percent: Amazon allows a restocking"
        " fee of at most 20% on an item returned in its original condition",
    ),
    "restocking fee above the refund": (
        ("refund_percent: 100", "refund_percent: 10"),
        ":19: return_request.conditions.used.restocking_fee_percent: the restocking fee (20%) is"
        " more than the refund (10%), so the buyer would owe you money",
    ),
    "refund share above 100": (
        ("refund_percent: 100", "refund_percent: 120"),
        ":18: return_request.conditions.used.refund_percent: Input should be less than or equal"
        " to 100 (got 120)",
    ),
    "condition name with capitals": (
        ("    used:\n", "    Used:\n"),
        ":17: return_request.conditions.Used: condition names use lowercase letters, digits and"
        " underscores",
    ),
    "unknown key in a condition": (
        (
            "restocking_fee_percent: 20\n",
            "restocking_fee_percent: 20\n      refund_shiping: true\n",
        ),
        ":20: return_request.conditions.used.refund_shiping: unknown key 'refund_shiping' (did"
        " you mean 'refund_shipping'?)",
    ),
    "refund deadline of zero business days": (
        ("refund_deadline_business_days: 2", "refund_deadline_business_days: 0"),
        ":20: return_request.refund_deadline_business_days: Input should be greater than or"
        " equal to 1 (got 0)",
    ),
    "negative wait": (
        ("wait_hours: 48", "wait_hours: -1"),
        ":22: cancel_by_message.wait_hours: Input should be greater than 0 (got -1)",
    ),
    "too many reminders": (
        ("reminders: 1\n  operator", "reminders: 9\n  operator"),
        ":23: cancel_by_message.reminders: Input should be less than or equal to 5 (got 9)",
    ),
    "cancel_by_message on_deadline not a choice": (
        ("on_deadline: remind}", "on_deadline: wait}"),
        ":24: cancel_by_message.operator.on_deadline: Input should be 'remind', 'ship' or"
        " 'cancel_as_seller' (got 'wait')",
    ),
    "unknown placeholder": (
        ("subject: Order {order_id}", "subject: Order {order_number}"),
        ":28: cancel_by_message.replies.en.subject: unknown placeholder {order_number}; use"
        " {order_id}, {buyer_name}, {marketplace}",
    ),
    "placeholder with a format": (
        ("subject: Order {order_id}", "subject: Order {order_id:>20}"),
        ":28: cancel_by_message.replies.en.subject: unknown placeholder {order_id:>20}",
    ),
    "lone brace": (
        ("subject: Order {order_id}", "subject: Order {order_id"),
        ":28: cancel_by_message.replies.en.subject: a '{' or '}' has no partner",
    ),
    "text that YAML reads as keys": (
        ("subject: Order {order_id}", "subject: {order_id}"),
        ":28: cancel_by_message.replies.en.subject: YAML reads text starting with { as a list"
        " of keys; put the whole text in quotes",
    ),
    "body without the order number": (
        ('reminder_body: "Please cancel {order_id}."', 'reminder_body: "Please cancel."'),
        ":31: cancel_by_message.replies.en.reminder_body: the text must contain {order_id}",
    ),
    "unknown language": (
        (
            "replies:\n    en:",
            "replies:\n    pt: {unknown_buyer_name: c, subject: s, body: '{order_id}',"
            " reminder_subject: s, reminder_body: '{order_id}'}\n    en:",
        ),
        ":26: cancel_by_message.replies.pt: unknown language 'pt'; a text is chosen by the"
        " buyer's language, one of en, ja, de, fr, it, es (English for the others)",
    ),
    "no English reply": (
        ("replies:\n    en:", "replies:\n    de:"),
        ":25: cancel_by_message.replies: give an `en` reply",
    ),
    "refund share not a percent": (
        ("item_price_percent: 100", "item_price_percent: 150"),
        ":35: refused_delivery.refund.item_price_percent: Input should be less than or equal to"
        " 100 (got 150)",
    ),
    "unknown adjustment reason": (
        ("refused_reason: RefusedDelivery", "refused_reason: Refused"),
        ":36: refused_delivery.refund.refused_reason: Input should be 'NoInventory',",
    ),
    "reship cost negative": (
        ("reship_cost: {USD: 15}", "reship_cost: {USD: -15}"),
        ":38: address_error.reship_cost.USD: Input should be greater than or equal to 0 (got -15)",
    ),
    "referral fee above 100": (
        ("referral_fee_percent: 15", "referral_fee_percent: 150"),
        ":39: address_error.referral_fee_percent: Input should be less than or equal to 100",
    ),
    "admin fee cap key misspelt": (
        ("at_most: 5.00}", "at_mots: 5.00}"),
        ":41: address_error.refund_admin_fee.USD.at_mots: unknown key 'at_mots' (did you mean"
        " 'at_most'?); keys allowed here: percent_of_referral_fee, at_most",
    ),
    "admin fee in an unknown currency": (
        ("    USD: {percent_of_referral_fee", "    UDS: {percent_of_referral_fee"),
        ":41: address_error.refund_admin_fee.UDS: unknown currency 'UDS'",
    ),
    **{
        f"address confirmation {kind}": (
            (
                "partial_refund_percent: 80",
                f"partial_refund_percent: 80\n  confirm_address:\n{texts}",
            ),
            expected,
        )
        for kind, texts, expected in (
            (
                "with HTML",
                '    en: "Order {order_id}: <b>confirm</b> the address"',
                ":44: address_error.confirm_address.en: Amazon refuses messages with HTML",
            ),
            (
                "with an e-mail address",
                '    en: "Order {order_id}: write to shop@example.com"',
                ":44: address_error.confirm_address.en: Amazon refuses messages with an e-mail",
            ),
            (
                "without the order",
                "    en: Please confirm your address.",
                ":44: address_error.confirm_address.en: the text must contain {order_id}",
            ),
            (
                "with the buyer's name",
                '    en: "Order {order_id} of {buyer_name}"',
                ":44: address_error.confirm_address.en: unknown placeholder {buyer_name}; use"
                " {order_id}, {marketplace}",
            ),
            (
                "without English",
                '    de: "Bestellung {order_id}"',
                ":43: address_error.confirm_address: give an `en` text",
            ),
        )
    },
    "retention out of bounds": (
        ("buyer_data_days: 90", "buyer_data_days: 5000"),
        ":44: retention.buyer_data_days: Input should be less than or equal to 3650 (got 5000)",
    ),
    "unknown key in a section": (
        ("  wait_days: 14", "  wait_dayz: 14"),
        ":33: refused_delivery.wait_dayz: unknown key 'wait_dayz' (did you mean 'wait_days'?)",
    ),
}


def test_sections_file_is_good() -> None:
    policy = parse_policy(SECTIONS_FILE.encode())
    assert policy.sections_set() == list(SECTIONS)


@pytest.mark.parametrize("kind", BAD_VALUES)
def test_bad_value_names_file_line_and_key_path(tmp_path: Path, kind: str) -> None:
    (old, new), expected = BAD_VALUES[kind]
    assert expected is not None
    assert old in SECTIONS_FILE, kind
    path = tmp_path / "policies.yaml"
    path.write_text(SECTIONS_FILE.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}{expected}"), lines[0]


def test_placeholders_are_the_three_henpin_fills_in() -> None:
    assert PLACEHOLDERS == ("order_id", "buyer_name", "marketplace")
