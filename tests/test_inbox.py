"""The Streamlit inbox, driven as an operator would: sign in, read the inbox, open a case, decide.

Real parts: the inbox's own scripts under AppTest, a real SQLite case store under tmp_path, the
real service functions. Cases are put in the store directly, as a flow would leave them waiting.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from henpin import accounts
from henpin.accounts import add_operator
from henpin.app.cases import show_case
from henpin.app.claims import claim
from henpin.app.decide import decide
from henpin.app.messages import SettleCode, settle_message
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Decision, Event
from tests.test_inbox_support import (
    REPO_POLICIES,
    address_error_case,
    app,
    cancel_order,
    closed_case,
    fresh_store,
    open_keys,
    opened,
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


def test_signed_out_sees_only_the_sign_in_form(store_url: str) -> None:
    waiting_case(store_url, "111-0000000-0000001", timedelta(hours=3))
    at = app().run()
    assert not at.exception
    assert [w.key for w in at.text_input] == ["login.name", "login.password"]
    assert "111-0000000-0000001" not in texts(at)
    assert not open_keys(at)


def test_case_page_link_without_sign_in_shows_the_sign_in_form(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000002", timedelta(hours=3))
    at = app()
    at.query_params["case"] = str(case_id)
    at.run()
    assert not at.exception
    assert "111-0000000-0000002" not in texts(at)
    assert at.text_input(key="login.password")


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(store_url: str) -> None:
    at = signed_in(password="wrong")
    assert not at.exception
    assert len(at.error) == 1
    assert "do not match" in at.error[0].value
    assert at.text_input(key="login.password")  # still on the sign-in page


def test_inbox_lists_waiting_cases_overdue_first(store_url: str) -> None:
    later = waiting_case(store_url, "111-0000000-0000010", timedelta(days=2))
    overdue = waiting_case(store_url, "111-0000000-0000011", timedelta(minutes=-30))
    soon = waiting_case(
        store_url, "111-0000000-0000012", timedelta(hours=1), needs_attention="payload odd"
    )
    at = signed_in()
    assert not at.exception
    assert open_keys(at) == [f"inbox.open.{i}" for i in (overdue, soon, later)]
    shown = table_text(at)
    assert "Signed in as **alice**" in "\n".join(m.value for m in at.sidebar.markdown)
    assert "overdue by 30 min" in shown or "overdue by 29 min" in shown
    assert "Needs attention" in shown
    assert "Keep the order and ship it" in shown  # the recommendation, in plain words
    assert "high-value-needs-operator" in shown
    assert [m.value for m in at.metric][:3] == ["3", "1", "2"]  # waiting, overdue, due in 2 h


def test_filters_by_type_marketplace_deadline_and_claim(store_url: str) -> None:
    us = waiting_case(store_url, "111-0000000-0000013", timedelta(hours=30))
    de = waiting_case(
        store_url, "302-0000000-0000014", timedelta(hours=1), marketplace_id="A1PA6795UKMFR9"
    )
    address = address_error_case(store_url, "302-0000000-0000015")
    add_operator(store_url, "bob", "pw-bob-123456")
    claim(store_url, us, "bob")
    at = signed_in()
    at.multiselect(key="inbox.types").select("address-error").run()
    assert open_keys(at) == [f"inbox.open.{address}"]
    at.multiselect(key="inbox.types").unselect("address-error").run()
    at.multiselect(key="inbox.marketplaces").select("A1PA6795UKMFR9").run()
    assert open_keys(at) == [f"inbox.open.{de}", f"inbox.open.{address}"]
    at.selectbox(key="inbox.due").set_value("2h").run()
    assert open_keys(at) == [f"inbox.open.{de}"]
    at.multiselect(key="inbox.marketplaces").unselect("A1PA6795UKMFR9")
    at.selectbox(key="inbox.due").set_value("any")
    at.selectbox(key="inbox.claimed").set_value("bob").run()
    assert not at.exception
    assert open_keys(at) == [f"inbox.open.{us}"]
    assert "bob has it" in table_text(at)
    at.selectbox(key="inbox.claimed").set_value("\x00nobody").run()
    assert set(open_keys(at)) == {f"inbox.open.{de}", f"inbox.open.{address}"}


def test_sorting_and_filters_survive_a_visit_to_a_case(store_url: str) -> None:
    first = waiting_case(store_url, "111-0000000-0000016", timedelta(hours=1))
    second = waiting_case(store_url, "111-0000000-0000017", timedelta(hours=9))
    at = signed_in()
    at.selectbox(key="inbox.sort").set_value("newest").run()
    assert open_keys(at) == [f"inbox.open.{second}", f"inbox.open.{first}"]
    at = opened(at, second)
    at.switch_page("screens/cases.py").run()
    assert at.selectbox(key="inbox.sort").value == "newest"
    assert open_keys(at) == [f"inbox.open.{second}", f"inbox.open.{first}"]


def test_closed_cases_show_their_outcome_when_asked_for(store_url: str) -> None:
    closed_case(store_url, "111-0000000-0000020", "kept-order")
    at = signed_in()
    assert "111-0000000-0000020" not in table_text(at)
    at.multiselect(key="inbox.states").select("closed").run()
    assert not at.exception
    assert "111-0000000-0000020" in table_text(at)
    assert "Kept the order" in table_text(at)


def test_case_page_shows_order_reason_recommendation_and_rule(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000030", timedelta(hours=5))
    at = opened(signed_in(), case_id)
    assert not at.exception
    shown = texts(at)
    assert "Cancel request · 111-0000000-0000030" in shown
    assert "Fulfillment status: **Unshipped**" in shown  # Amazon's UNSHIPPED, in words
    assert "\\$249.90" in shown  # as amazon.com writes it (escaped: `$` starts a formula)
    assert "Found it cheaper elsewhere" in [t.value for t in at.text]  # plain text, inert
    assert "**Keep the order and ship it**" in shown
    assert "high-value-needs-operator" in shown
    assert "above the 100.00 USD automatic limit" in shown
    assert "Cast iron kettle" in at.dataframe[0].value.to_string()
    assert at.radio(key=f"decide.{case_id}.choice").options == [
        "Cancel the order (reason: BuyerCanceled)",
        "Keep the order and ship it (recommended)",
        "Escalate to the owner",
    ]
    links = [b.proto.url for b in at.get("link_button")]
    assert "https://sellercentral.amazon.com/orders-v3/order/111-0000000-0000030" in links


def test_case_page_shows_the_money_of_each_option_and_the_buyers_words(store_url: str) -> None:
    case_id = address_error_case(store_url, "302-0000000-0000031")
    at = opened(signed_in(), case_id)
    assert not at.exception
    shown = texts(at)
    assert "Money of each option" in shown
    options = at.dataframe[0].value.to_string()
    assert "Reship to the confirmed address" in options
    assert "6,50\xa0€" in options and "4,80\xa0€" in options and "★" in options  # as amazon.de
    assert "Please send it to Hauptstr. 5 instead" in [t.value for t in at.text]
    facts = "\n".join(d.value.to_string() for d in at.dataframe)
    assert "Hauptstr. 5, 10115 Berlin" in facts
    # The form asks for the fields its question names, with their bounds.
    assert at.text_input(key=f"decide.{case_id}.field.tracking_number")
    assert "Between 0.01 and 40.00." in str(
        at.text_input(key=f"decide.{case_id}.field.refund_amount").help
    )


def test_an_answer_with_fields_is_checked_then_recorded(store_url: str) -> None:
    case_id = address_error_case(store_url, "302-0000000-0000032")
    at = opened(signed_in(), case_id)
    at.radio(key=f"decide.{case_id}.choice").set_value("partial_refund")
    at.text_input(key=f"decide.{case_id}.field.refund_amount").input("55")
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert not at.exception
    assert "the answer is not complete" in at.error[0].value
    assert at.radio(key=f"decide.{case_id}.choice")  # asked again
    at.text_input(key=f"decide.{case_id}.field.refund_amount").input("12.50")
    at.text_area(key=f"decide.{case_id}.note").input("Agreed by e-mail")
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert "recorded for case" in at.success[0].value
    with session_scope(store_url) as s:
        d = s.scalars(select(Decision).where(Decision.case_id == case_id)).one()
        assert (d.choice, d.data) == ("partial_refund", {"refund_amount": "12.50"})


def test_decision_is_recorded_with_the_operators_name(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000040", timedelta(hours=5))
    at = opened(signed_in(), case_id)
    at.radio(key=f"decide.{case_id}.choice").set_value("cancel")
    at.text_area(key=f"decide.{case_id}.note").input("Buyer asked twice")
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert not at.exception
    assert len(at.success) == 1
    assert "recorded for case" in at.success[0].value
    assert not at.radio  # the form is gone: no second submit
    with session_scope(store_url) as s:
        rows = s.scalars(select(Decision).where(Decision.case_id == case_id)).all()
        assert [(d.choice, d.operator, d.source, d.note) for d in rows] == [
            ("cancel", "alice", "inbox", "Buyer asked twice")
        ]


def test_submit_without_a_choice_asks_again(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000050", timedelta(hours=5))
    at = opened(signed_in(), case_id)
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert not at.exception
    assert "Choose what should happen" in at.error[0].value
    assert at.radio(key=f"decide.{case_id}.choice")  # the form is still there


def test_decision_on_a_case_someone_else_decided_says_who(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000060", timedelta(hours=5))
    at = opened(signed_in(), case_id)
    # Bob decides from the command line while Alice has the form open.
    decide(store_url, case_id, choice="keep_order", operator="bob", source="cli")
    at.radio(key=f"decide.{case_id}.choice").set_value("cancel")
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert not at.exception
    assert "already decided by bob" in at.warning[0].value
    with session_scope(store_url) as s:
        rows = s.scalars(select(Decision).where(Decision.case_id == case_id)).all()
        assert [(d.choice, d.operator) for d in rows] == [("keep_order", "bob")]
    # Opened afresh, the page says so instead of offering the form.
    at = opened(signed_in(), case_id)
    assert not at.exception
    assert "Already decided by bob" in at.info[0].value
    assert not at.radio


def test_decision_on_a_case_no_longer_waiting_is_refused_in_words(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000070", timedelta(hours=5))
    at = opened(signed_in(), case_id)
    with session_scope(store_url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.state, case.outcome = "closed", "order-changed"
    at.radio(key=f"decide.{case_id}.choice").set_value("cancel")
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert not at.exception
    assert "is not waiting for a decision" in at.error[0].value
    assert "Order changed before Henpin acted" in at.error[0].value


def test_a_form_opened_for_an_earlier_question_is_refused(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000071", timedelta(hours=5))
    at = opened(signed_in(), case_id)
    with session_scope(store_url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.waiting_step = "operator-decision-again"
    at.radio(key=f"decide.{case_id}.choice").set_value("cancel")
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert "has moved on since you opened it" in at.error[0].value
    assert at.radio(key=f"decide.{case_id}.choice")  # the new question's form


def test_claim_release_and_what_others_see(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000075", timedelta(hours=5))
    at = opened(signed_in(), case_id)
    at.button(key=f"claim.{case_id}").click().run()
    assert not at.exception
    assert "You are working on case" in at.success[0].value
    assert "You are working on this case" in texts(at)
    add_operator(store_url, "bob", "pw-bob-123456")
    bob = opened(signed_in("bob", "pw-bob-123456"), case_id)
    assert "**alice** is working on this case" in texts(bob)
    assert bob.button(key=f"take_over.{case_id}")
    assert f"release.{case_id}" not in [b.key for b in bob.button]  # only alice or an admin
    at.button(key=f"release.{case_id}").click().run()
    assert "is released" in at.success[0].value
    with session_scope(store_url) as s:
        case = s.get(Case, case_id)
        assert case is not None and case.claimed_by is None
        kinds = s.scalars(select(Event.kind).where(Event.case_id == case_id)).all()
        assert kinds == ["claim", "release"]


def test_deciding_a_case_claimed_by_another_asks_for_confirmation(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000076", timedelta(hours=5))
    add_operator(store_url, "bob", "pw-bob-123456")
    claim(store_url, case_id, "bob")
    at = opened(signed_in(), case_id)
    assert "**bob** is working on this case" in texts(at)
    at.radio(key=f"decide.{case_id}.choice").set_value("cancel")
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert "bob is working on this case" in at.warning[0].value
    with session_scope(store_url) as s:
        assert not s.scalars(select(Decision).where(Decision.case_id == case_id)).all()
    at.checkbox(key=f"decide.{case_id}.over_claim").check()
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert "recorded for case" in at.success[0].value
    assert "(bob had claimed it.)" in at.success[0].value


def test_take_over_a_claim(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000077", timedelta(hours=5))
    add_operator(store_url, "bob", "pw-bob-123456")
    claim(store_url, case_id, "bob")
    at = opened(signed_in(), case_id)
    at.button(key=f"take_over.{case_id}").click().run()
    assert "You took case" in at.success[0].value and "from bob" in at.success[0].value


def test_sign_out_returns_to_the_sign_in_form(store_url: str) -> None:
    at = signed_in()
    at.button(key="session.sign_out").click().run()
    assert not at.exception
    assert at.text_input(key="login.password")
    assert not open_keys(at)


def test_viewer_reads_the_case_but_gets_no_form_no_claim_and_no_personal_data(
    store_url: str,
) -> None:
    set_operator(store_url, "alice", role="viewer")
    case_id = address_error_case(store_url, "302-0000000-0000080")
    at = opened(signed_in(), case_id)
    assert not at.exception
    shown = texts(at)
    assert "302-0000000-0000080" in shown
    assert not at.radio
    assert "can read cases but not decide" in shown
    assert not [b for b in at.button if (b.key or "").startswith("claim.")]
    assert "Hauptstr" not in shown + "\n".join(d.value.to_string() for d in at.dataframe)
    assert "Shown to operators only" in shown


def test_case_page_links_to_the_flow_run_when_the_prefect_ui_is_known(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HENPIN_PREFECT_UI_URL", "http://127.0.0.1:4200/")
    run_id = "0b7c5d3e-1111-4222-8333-944455556666"
    case_id = waiting_case(store_url, "111-0000000-0000090", timedelta(hours=5), flow_run_id=run_id)
    at = opened(signed_in(), case_id)
    links = [b.proto.url for b in at.get("link_button")]
    assert f"http://127.0.0.1:4200/runs/flow-run/{run_id}" in links


def test_an_operator_who_reads_japanese_gets_the_inbox_in_japanese(store_url: str) -> None:
    set_operator(store_url, "alice", language="ja")
    case_id = waiting_case(store_url, "111-0000000-0000100", timedelta(hours=5))
    at = signed_in()
    assert not at.exception
    assert "ケース（1 件）" in texts(at)
    at = opened(at, case_id)
    assert "注文を維持して出荷する" in texts(at)
    assert at.radio(key=f"decide.{case_id}.choice").options[0] == (
        "注文をキャンセルする（理由: BuyerCanceled）"
    )
    at.sidebar.selectbox[0].set_value("en").run()  # switch back, and keep it for next time
    assert not at.exception
    assert "Keep the order and ship it" in texts(at)
    assert "Cases (1)" in texts(signed_in())  # English is kept for her next sign-in


def test_a_bad_policy_edit_is_shown_on_every_page_until_fixed(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policies = tmp_path / "policies.yaml"
    good = REPO_POLICIES.read_text()
    policies.write_text(good)
    monkeypatch.setenv("HENPIN_POLICIES", str(policies))
    at = signed_in()
    assert not at.warning
    policies.write_text(good.replace("pending_window_minutes:", "pending_window_minutez:", 1))
    at.run()
    [banner] = at.warning
    assert "last good policy stays in force" in banner.value
    assert "pending_window_minutez: unknown key" in banner.value
    assert f"{policies}:" in banner.value  # file and line
    policies.write_text(good)
    assert not at.run().warning


def uncertain_email(url: str, case_id: int, key: str) -> None:
    """An e-mail the outbox could not tell was sent, as it leaves one after a crash mid-call."""
    stored_action(
        url,
        case_id,
        key,
        kind="send-email",
        feed_type="SMTP",
        marketplace_id="ATVPDKIKX0DER",
        payload={"to": "buyer@example.invalid", "subject": "Your order", "body": "..."},
        status="submitted",
        result_code="UNCERTAIN",
        result_message="The mail server may or may not have taken this e-mail.",
    )


def test_a_message_henpin_could_not_tell_was_sent_is_settled_by_a_person_once(
    store_url: str,
) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000095", timedelta(hours=5))
    uncertain_email(store_url, case_id, "mail-95")
    at = opened(signed_in(), case_id)
    assert "cannot tell whether this E-mail to the buyer went out" in texts(at)
    other = opened(signed_in(), case_id)  # a second operator's page, opened before the answer
    at.button(key="settle.not_sent.mail-95").click().run()
    assert "goes out on the next round" in texts(at)
    assert not [b for b in at.button if (b.key or "").startswith("settle.")]
    with session_scope(store_url) as s:
        action = s.scalar(select(Action).where(Action.key == "mail-95"))
        assert action is not None and (action.status, action.result_code) == ("pending", None)
    other.button(key="settle.sent.mail-95").click().run()  # too late: the first answer won
    assert "settled this already" in texts(other)
    [line] = accounts.audit_lines(store_url, action="message-settled")
    assert (line.actor, line.target, line.detail) == (
        "alice",
        f"case {case_id}",
        {"action": "mail-95", "was_sent": False},
    )
    detail = show_case(store_url, case_id)
    assert detail is not None
    assert any(e.kind == "message-settled" for e in detail.timeline)


def test_a_viewer_sees_no_settle_buttons(store_url: str) -> None:
    set_operator(store_url, "alice", role="viewer")
    case_id = waiting_case(store_url, "111-0000000-0000096", timedelta(hours=5))
    uncertain_email(store_url, case_id, "mail-96")
    at = opened(signed_in(), case_id)
    assert not [b for b in at.button if (b.key or "").startswith("settle.")]
    assert (
        settle_message(store_url, case_id, "mail-96", was_sent=True, operator="alice")
        == SettleCode.NOT_ALLOWED
    )


@pytest.mark.e2e
def test_the_cli_settles_an_uncertain_message_with_the_same_rules(store_url: str) -> None:
    import json
    import subprocess
    import sys

    case_id = waiting_case(store_url, "111-0000000-0000097", timedelta(hours=5))
    uncertain_email(store_url, case_id, "mail-97")

    def settle(*args: str) -> tuple[int, dict[str, object]]:
        command = ["cases", "settle-message", str(case_id), "mail-97", *args, "--json"]
        out = subprocess.run(
            [sys.executable, "-m", "henpin.cli", *command],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return out.returncode, json.loads(out.stdout)

    assert settle("--sent", "--operator", "alice") == (
        0,
        {"case_id": case_id, "key": "mail-97", "settled": True, "result": "marked-sent"},
    )
    rc, again = settle("--not-sent", "--operator", "alice")
    assert (rc, again["result"]) == (1, "not-uncertain")
    with session_scope(store_url) as s:
        action = s.scalar(select(Action).where(Action.key == "mail-97"))
        assert action is not None and (action.status, action.result_code) == (
            "done",
            "CONFIRMED_SENT",
        )
    [line] = accounts.audit_lines(store_url, action="message-settled")
    assert (line.actor, line.source) == ("alice", "cli")


@pytest.mark.e2e
def test_decisions_from_the_command_line_are_in_the_audit_log(store_url: str) -> None:
    import subprocess
    import sys

    case_id = waiting_case(store_url, "111-0000000-0000098", timedelta(hours=5))
    add_operator(store_url, "carol", "pw-carol-123456")
    add_operator(store_url, "dave", "pw-dave-123456")

    def decide_cli(choice: str, operator: str) -> int:
        command = ["decide", str(case_id), "--choice", choice, "--operator", operator, "--json"]
        return subprocess.run(
            [sys.executable, "-m", "henpin.cli", *command], capture_output=True, timeout=60
        ).returncode

    assert decide_cli("cancel", "carol") == 0
    assert decide_cli("keep_order", "dave") == 1  # carol was first
    lines = accounts.audit_lines(store_url)
    assert [(a.actor, a.action, a.source, a.detail["choice"]) for a in lines[:2]] == [
        ("dave", "decision-refused", "cli", "keep_order"),
        ("carol", "decision", "cli", "cancel"),
    ]


def test_what_a_buyer_wrote_is_shown_inert(store_url: str) -> None:
    """No link, image or address a buyer wrote becomes live: their words are plain text, and
    a timeline line quoting them has its markdown escaped and its autolinks broken."""
    said = "[Refund here](http://evil.example/x) ![p](http://t.example/p.png) www.evil.example a@evil.example"
    snapshot = cancel_order("111-0000000-0000090")
    snapshot["buyer_cancel_reason"] = said
    case_id = waiting_case(
        store_url, "111-0000000-0000090", timedelta(hours=5), order_snapshot=snapshot
    )
    with session_scope(store_url) as s:
        s.add(Event(case_id=case_id, kind="opened", message=f"Buyer wrote: {said}"))
    at = opened(signed_in(), case_id)
    assert not at.exception
    assert said in [t.value for t in at.text]
    markdown = "\n".join(str(m.value) for m in at.markdown)
    assert "Buyer wrote:" in markdown
    assert "\\](http" in markdown and "](http" not in markdown.replace("\\](", "")  # escaped
    for live in ("http://", "www.evil", "a@evil"):  # autolinks broken
        assert live not in markdown, live
