"""What every policy section shares: problems located in the file, field types with messages an
owner can act on, the frozen model base, the operator's deadline, and money arithmetic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue
from pydantic_core import PydanticCustomError

from henpin.domain import Money
from henpin.marketplaces import MARKETPLACES
from henpin.money import decimals_of, excess_decimals

Loc = tuple[int | str, ...]  # where in the file: keys and list indexes, as pydantic reports them
Inputs = dict[str, JsonValue]  # what a decision looked at, JSON-ready, for replay


class PolicyError(ValueError):
    """A policy file that cannot be used. `str()` lists every problem, one per line."""

    def __init__(self, source: str, problems: Sequence[PolicyProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(p.render(source) for p in self.problems))


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong in a policy file, located for a person with a text editor."""

    line: int | None  # 1-based; None when the file could not be read at all
    key_path: str  # e.g. cancel_request.rules[1].when.order_value_over.USD; "" for the whole file
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        return (
            f"{where}: {self.key_path}: {self.message}"
            if self.key_path
            else f"{where}: {self.message}"
        )


class LocatedProblems(ValueError):
    """Problems a validator found at several places below its own, each with its message.

    Raised from a validator so that each problem is reported at its own line and key path (the
    loader joins the validator's place with each `where`)."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


# --- Field types with messages an owner can act on ----------------------------------------------

OWNER_ERROR = "policy_rule"  # pydantic error type of the messages below: shown to the owner as is


def owner_error(message: str) -> PydanticCustomError:
    return PydanticCustomError(OWNER_ERROR, message)


def _marketplace_id(code: str) -> str:
    """Accept a marketplace id or its country code (US, UK, DE, JP, ...); store the id."""
    wanted = code.strip().upper()
    if wanted == "GB":
        wanted = "UK"
    for m in MARKETPLACES.values():
        if wanted in (m.country, m.marketplace_id.upper()):
            return m.marketplace_id
    known = ", ".join(m.country for m in MARKETPLACES.values())
    raise owner_error(f"unknown marketplace {code!r}; use a country code ({known}) or an id")


KNOWN_CURRENCIES = tuple(sorted({m.currency for m in MARKETPLACES.values()}))


def _currency(code: str) -> str:
    """A currency one of Henpin's marketplaces sells in; a typo such as UDS would never match."""
    if code not in KNOWN_CURRENCIES:
        raise owner_error(f"unknown currency {code!r}; use one of {', '.join(KNOWN_CURRENCIES)}")
    return code


_Items = TypeVar("_Items", dict[str, Decimal], tuple[str, ...])


def not_empty(items: _Items) -> _Items:
    if not items:
        raise owner_error(
            "nothing is listed, so this never matches; list at least one value or remove this key"
        )
    return items


MarketplaceId = Annotated[str, AfterValidator(_marketplace_id)]
Currency = Annotated[str, AfterValidator(_currency)]
Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Percent = Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


def exact_amounts(amounts: dict[str, Decimal]) -> dict[str, Decimal]:
    """Each amount in its currency's minor unit: 12.345 USD or 1500.5 JPY is refused (at its
    own key), never rounded, since the owner meant something Henpin cannot guess."""
    problems: list[tuple[Loc, str]] = []
    for currency, amount in amounts.items():
        problem = excess_decimals(amount, currency)
        if problem:
            problems.append(((currency,), f"{problem}; an amount is in the currency's minor unit"))
    if problems:
        raise LocatedProblems(problems)
    return amounts


#: e.g. {USD: 10, JPY: 1500}; a missing currency: unset
AmountByCurrency = Annotated[dict[Currency, Amount], AfterValidator(exact_amounts)]


class PolicyModel(BaseModel):
    """Every policy model: unknown keys are errors, values cannot be changed after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OperatorDeadline(PolicyModel):
    """How long an operator has to answer. Each case type adds `on_deadline`: its named path
    when nobody has answered in time."""

    deadline_hours: float = Field(default=24, gt=0, le=24 * 14)

    @property
    def deadline(self) -> timedelta:
        return timedelta(hours=self.deadline_hours)


class Advice(PolicyModel):
    """What policy says to do with a case, which rule said so, and what it looked at.

    Each case type narrows `action` to its own choices. `rule` is a fixed name per check (listed
    with each case type) or the name of an owner's rule; `reason` is for the operator to read;
    `inputs` are the facts the rule saw, so a replay under another policy can check its footing.
    `reason_code` and `reason_values` are the reason as data (henpin/policy/reasons.py), so the
    inbox words it in the operator's language; recommendations stored before them have none.
    """

    action: str
    rule: str
    reason: str
    inputs: Inputs
    reason_code: str | None = None
    reason_values: Inputs = Field(default_factory=dict)


# --- Money ----------------------------------------------------------------------------------------


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round to what the currency pays in (yen have no cents); halves round up."""
    return amount.quantize(Decimal(1).scaleb(-decimals_of(currency)), rounding=ROUND_HALF_UP)


def share(amount: Decimal, percent: Decimal, currency: str) -> Decimal:
    """`percent` % of `amount`, rounded for the currency."""
    return round_money(amount * percent / 100, currency)


def money(amount: Decimal, currency: str) -> Money:
    return Money(amount=round_money(amount, currency), currency=currency)


def money_json(value: Money | None) -> JsonValue:
    return None if value is None else {"amount": str(value.amount), "currency": value.currency}


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def mentions(text: str | None, phrases: Sequence[str]) -> str | None:
    """The first phrase `text` contains, upper/lower case ignored; None when none is there."""
    folded = (text or "").casefold()
    return next((p for p in phrases if p.casefold() in folded), None)
