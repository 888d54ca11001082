"""Each case type's answers (henpin/cases/<case type>.py): every choice a `RunInput` can carry has
words, in the question (English) and in the inbox in both languages, and no words exist for a
choice no answer (nor any policy's recommendation) has."""

from __future__ import annotations

import importlib
import pkgutil
from typing import get_args

import pytest

import henpin.cases
import henpin.policy as policies
from henpin.cases.answers import OperatorAnswer
from henpin.domain import CaseType
from ui.text_en import EN
from ui.text_ja import JA

for _module in pkgutil.iter_modules(henpin.cases.__path__):
    importlib.import_module(f"henpin.cases.{_module.name}")


def _answers(cls: type[OperatorAnswer] = OperatorAnswer) -> list[type[OperatorAnswer]]:
    found = []
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("henpin.cases."):
            found.append(sub)
        found += _answers(sub)
    return found


def _is_base(answer: type[OperatorAnswer]) -> bool:
    """A shared answer (the refund confirmation) each case type narrows to its own choices."""
    return any(sub.__module__.startswith("henpin.cases.") for sub in answer.__subclasses__())


ANSWERS = [a for a in _answers() if not _is_base(a)]
#: What a policy can recommend: the inbox words these as choices too (`choice.<action>`).
POLICY_ACTIONS = frozenset(
    a
    for t in (
        policies.cancel_request.CancelRequestAction,
        policies.return_request.ReturnAction,
        policies.refused_delivery.RefusedDeliveryAction,
        policies.cancel_by_message.CancelByMessageAction,
        policies.address_error.AddressErrorAction,
    )
    for a in get_args(t)
)


def test_a_shared_answer_is_asked_only_as_a_case_types_own() -> None:
    from henpin.cases.refund_confirmation import RefundConfirmation

    assert [a for a in _answers() if _is_base(a)] == [RefundConfirmation]
    for answer in RefundConfirmation.__subclasses__():
        assert {"refund_proposed", "refund_other_amount"} <= set(answer.labels)
        assert answer.model_fields["choice"].annotation is not str


def test_every_case_type_declares_its_answers() -> None:
    homes = {a.__module__.removeprefix("henpin.cases.") for a in ANSWERS}
    assert {t.value.replace("-", "_") for t in CaseType} <= homes
    assert len(ANSWERS) >= 14


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: f"{a.__module__}.{a.__name__}")
def test_answer_choices_and_labels_agree(answer: type[OperatorAnswer]) -> None:
    choices = answer.choices()
    offered = set(answer.labels)
    # Each choice is offered to a person (with words) or given only by Henpin, not both.
    assert offered | answer.henpin_only == choices
    assert not offered & answer.henpin_only
    assert all(words.strip() for words in answer.labels.values())
    for language, table in (("en", EN), ("ja", JA)):
        missing = sorted(c for c in choices if f"choice.{c}" not in table)
        assert not missing, f"{answer.__name__}: no {language} words for {missing}"


def test_no_words_for_a_choice_that_is_not_there() -> None:
    known = set().union(*(a.choices() for a in ANSWERS)) | POLICY_ACTIONS
    for language, table in (("en", EN), ("ja", JA)):
        worded = {k.removeprefix("choice.") for k in table if k.startswith("choice.")}
        assert worded - known == set(), language


def test_a_question_that_does_not_fit_its_answer_is_refused() -> None:
    from henpin.cases.cancel_request import CancelDecision
    from henpin.questions import Question

    fits = Question(step="s", choices=["cancel"], deadline_hours=1, timeout_choice="escalate")
    CancelDecision.check_question(fits)
    for wrong in (
        fits.model_copy(update={"choices": ["cancel", "ship"]}),
        fits.model_copy(update={"timeout_choice": "remind"}),
    ):
        with pytest.raises(ValueError, match="does not fit CancelDecision"):
            CancelDecision.check_question(wrong)


def test_the_flow_gets_the_recorded_answer_typed() -> None:
    """The answer recorded in the case store (fields as the inbox stored them, strings) comes
    back as the question's RunInput: amounts as Decimal, times as datetime, who and when kept."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from henpin.cases.address_error import Resolution
    from henpin.cases.return_request import ItemReceipt
    from henpin.decisions import RecordedDecision

    at = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    recorded = RecordedDecision(
        1, "resolve", "reship", "ok", "alice", "inbox", at, True,
        {"tracking_number": "1Z9", "reship_cost": "15.00", "refund_amount": ""},
    )  # fmt: skip
    resolution = Resolution.from_recorded(recorded)
    assert (resolution.choice, resolution.tracking_number) == ("reship", "1Z9")
    assert resolution.reship_cost == Decimal("15.00") and resolution.refund_amount is None
    assert (resolution.operator, resolution.at, resolution.note) == ("alice", at, "ok")

    by_ingestion = RecordedDecision(
        2, "item-received", "received", "", "henpin", "system", at, True,
        {"return_delivery_date": "2026-03-01T09:30:00+00:00"},
    )  # fmt: skip
    receipt = ItemReceipt.from_recorded(by_ingestion)
    assert receipt.return_delivery_date == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    # Henpin's own field is not in the Prefect UI's Resume form.
    assert "return_delivery_date" not in ItemReceipt.model_json_schema()["properties"]
