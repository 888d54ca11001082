"""What a person answers to a case's question: a typed Prefect `RunInput` per question.

Each case type declares its answers in its own module (henpin/cases/<case type>.py), each with
its `Literal` choices and, beside them, the English words of the choices a person is offered
(`labels`, shown in the question and above the Prefect UI's Resume form). The inbox words the
same choices in the operator's language (`choice.<name>` in ui/text_*.py); tests/test_answers.py
proves the three agree for every answer of every case type.

The flow gets the answer it declared back, typed (`Decimal` amounts, `Literal` choices), built
from the answer recorded in the case store (`from_recorded`): the store is the source of truth
whatever the run was resumed with. The field names are the Prefect run-input schema of runs
already suspended: rename none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Self, get_args

from prefect.input import RunInput
from pydantic import PrivateAttr

from henpin.decisions import RecordedDecision
from henpin.questions import Question


class OperatorAnswer(RunInput):
    """Fields every decision input has; each question adds `choice: Literal[...]` (and may add
    optional fields such as an amount). No field says who answers: the Prefect UI's Resume form
    cannot tell, so its answers are recorded as `prefect-ui` (henpin/decisions.py); who and
    when come from the case store (`operator`, `at`)."""

    note: str = ""

    #: The English words of each choice a person is offered, in the order offered.
    labels: ClassVar[dict[str, str]] = {}
    #: Choices only Henpin (ingestion) or the deadline gives: never offered to a person.
    henpin_only: ClassVar[frozenset[str]] = frozenset()

    _recorded: RecordedDecision | None = PrivateAttr(default=None)

    @classmethod
    def choices(cls) -> frozenset[str]:
        """Every choice the answer can carry (its `Literal`)."""
        return frozenset(get_args(cls.model_fields["choice"].annotation))

    @classmethod
    def check_question(cls, question: Question) -> None:
        """A question must offer only this answer's choices, each with words, and time out to
        one of them: a programming error otherwise, caught before anyone is asked."""
        offered = set(question.choices) - set(cls.labels)
        timeout = {question.timeout_choice} - cls.choices()
        if offered or timeout:
            raise ValueError(
                f"question {question.step!r} does not fit {cls.__name__}: "
                f"offers {sorted(offered)}, times out to {sorted(timeout)}"
            )

    @classmethod
    def from_recorded(cls, decision: RecordedDecision) -> Self:
        """The recorded winner as this answer: its choice, note and extra fields, typed."""
        fields: dict[str, Any] = {
            k: v
            for k, v in decision.data.items()
            if k in cls.model_fields and k not in ("choice", "note") and v not in (None, "")
        }
        answer = cls.model_validate({"choice": decision.choice, "note": decision.note, **fields})
        answer._recorded = decision
        return answer

    @property
    def recorded(self) -> RecordedDecision:
        assert self._recorded is not None, "an answer the flow got from ask_operator"
        return self._recorded

    @property
    def operator(self) -> str:
        """Who answered (an operator's name, `prefect-ui`, `deadline` or `henpin`)."""
        return self.recorded.operator

    @property
    def at(self) -> datetime:
        """When the answer was recorded."""
        return self.recorded.at
