"""The owner's rules from `policies.yaml`: which cases Henpin settles alone, which go to a person.

The file is parsed once, at the edge, into frozen pydantic models; flows receive a `Policy`, never
a path. A bad file fails with the file, line and key path of every problem, so the owner can fix
it without reading Python. While Henpin runs, `PolicyHolder` picks up edits and keeps the last good
policy in force when an edit is bad.

Evaluation is pure: `CancelRequestPolicy.recommend(order, now)` looks only at the order, the clock
it is given and the policy, and says which rule decided and with which inputs, so a past case can
be decided again under another policy (replay).
"""

from __future__ import annotations

import difflib
import hashlib
import threading
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from henpin.domain import FulfillmentStatus, Order
from henpin.marketplaces import MARKETPLACES

SCHEMA_VERSION = 1

# Names Henpin itself gives to the decisions it makes before the owner's rules are consulted.
# Owner rules may not use them, so a recorded rule name always says who decided.
BUILT_IN_RULES = frozenset(
    {
        "already-cancelled",
        "fulfilled-by-amazon",
        "already-shipped",
        "pending-window",
        "pending-overdue",
        "pre-order",
        "unexpected-status",
        "no-rule-matched",
    }
)

CancelRequestAction = Literal["nothing_to_do", "cancel", "ask_operator"]
Loc = tuple[int | str, ...]  # where in the file: keys and list indexes, as pydantic reports them


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


# --- Field types with messages an owner can act on ----------------------------------------------

_OWNER_ERROR = "policy_rule"  # pydantic error type of the messages below: shown to the owner as is


def _owner_error(message: str) -> PydanticCustomError:
    return PydanticCustomError(_OWNER_ERROR, message)


def _marketplace_id(code: str) -> str:
    """Accept a marketplace id or its country code (US, UK, DE, JP, ...); store the id."""
    wanted = code.strip().upper()
    if wanted == "GB":
        wanted = "UK"
    for m in MARKETPLACES.values():
        if wanted in (m.country, m.marketplace_id.upper()):
            return m.marketplace_id
    known = ", ".join(m.country for m in MARKETPLACES.values())
    raise _owner_error(f"unknown marketplace {code!r}; use a country code ({known}) or an id")


def _currency(code: str) -> str:
    """A currency one of Henpin's marketplaces sells in; a typo such as UDS would never match."""
    known = sorted({m.currency for m in MARKETPLACES.values()})
    if code not in known:
        raise _owner_error(f"unknown currency {code!r}; use one of {', '.join(known)}")
    return code


def _rule_name(name: str) -> str:
    parts = name.split("-")
    if not name or not all(p and p.isascii() and p.isalnum() and p == p.lower() for p in parts):
        raise _owner_error(
            f"rule names use lowercase letters, digits and hyphens, e.g. high-value (got {name!r})"
        )
    if name in BUILT_IN_RULES:
        raise _owner_error(f"{name!r} is a name Henpin uses for its own decisions; choose another")
    return name


_Items = TypeVar("_Items", dict[str, Decimal], tuple[str, ...])


def _not_empty(items: _Items) -> _Items:
    if not items:
        raise _owner_error(
            "nothing is listed, so this never matches; list at least one value or remove this key"
        )
    return items


MarketplaceId = Annotated[str, AfterValidator(_marketplace_id)]
Currency = Annotated[str, AfterValidator(_currency)]
RuleName = Annotated[str, AfterValidator(_rule_name)]
Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class _PolicyModel(BaseModel):
    """Every policy model: unknown keys are errors, values cannot be changed after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- Cancel request (case type 1) ---------------------------------------------------------------


@dataclass(frozen=True)
class _OrderFacts:
    """What the rules may look at, computed once per evaluation."""

    value_amount: Decimal | None
    value_currency: str | None
    skus: tuple[str, ...]
    marketplace_id: str
    buyer_reason: str | None


class Conditions(_PolicyModel):
    """A rule's `when`: every condition given must hold for the rule to match."""

    order_value_over: Annotated[dict[Currency, Amount], AfterValidator(_not_empty)] | None = None
    sku_prefixes: Annotated[tuple[Text, ...], AfterValidator(_not_empty)] | None = None
    skus: Annotated[tuple[Text, ...], AfterValidator(_not_empty)] | None = None
    marketplaces: Annotated[tuple[MarketplaceId, ...], AfterValidator(_not_empty)] | None = None
    buyer_reason_contains: Annotated[tuple[Text, ...], AfterValidator(_not_empty)] | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in type(self).model_fields)

    def explain_match(self, facts: _OrderFacts) -> list[str] | None:
        """Why each condition holds, in plain words; None as soon as one does not."""
        checks = (
            self._value_over,
            self._sku_prefix,
            self._sku_listed,
            self._marketplace,
            self._reason_mentions,
        )
        reasons: list[str] = []
        for check in checks:
            because = check(facts)
            if because is False:
                return None
            if isinstance(because, str):
                reasons.append(because)
        return reasons

    # Each check returns None when its condition is not set, False when it fails, else the reason.

    def _value_over(self, facts: _OrderFacts) -> str | bool | None:
        if self.order_value_over is None:
            return None
        if facts.value_amount is None or facts.value_currency is None:
            return False
        limit = self.order_value_over.get(facts.value_currency)
        if limit is None or facts.value_amount <= limit:
            return False
        value = _format_money(facts.value_amount, facts.value_currency)
        return f"order value {value} is over the {limit:,} {facts.value_currency} limit"

    def _sku_prefix(self, facts: _OrderFacts) -> str | bool | None:
        if self.sku_prefixes is None:
            return None
        for sku in facts.skus:
            for prefix in self.sku_prefixes:
                if sku.startswith(prefix):
                    return f"SKU {sku} starts with {prefix}"
        return False

    def _sku_listed(self, facts: _OrderFacts) -> str | bool | None:
        if self.skus is None:
            return None
        listed = next((sku for sku in facts.skus if sku in self.skus), None)
        return f"SKU {listed} is listed" if listed else False

    def _marketplace(self, facts: _OrderFacts) -> str | bool | None:
        if self.marketplaces is None:
            return None
        if facts.marketplace_id not in self.marketplaces:
            return False
        m = MARKETPLACES[facts.marketplace_id]
        return f"marketplace is {m.country} ({m.name})"

    def _reason_mentions(self, facts: _OrderFacts) -> str | bool | None:
        if self.buyer_reason_contains is None:
            return None
        reason = (facts.buyer_reason or "").casefold()
        phrase = next((p for p in self.buyer_reason_contains if p.casefold() in reason), None)
        return f"the buyer's reason mentions {phrase!r}" if phrase else False


class Rule(_PolicyModel):
    """One line of the owner's decision table. Without `when` it is the default rule."""

    name: RuleName
    when: Conditions | None = None
    then: Literal["cancel", "ask_operator"]

    @field_validator("when")
    @classmethod
    def _when_says_something(cls, when: Conditions | None) -> Conditions | None:
        if when is not None and when.is_empty():
            raise _owner_error(
                "`when` has no conditions; remove `when` to make this the default rule"
            )
        return when

    @property
    def is_default(self) -> bool:
        return self.when is None


def _rule_table_problems(rules: Sequence[tuple[object, bool]]) -> list[tuple[Loc, str]]:
    """Problems of the rule list as a whole, given each rule's (name, is default), in order."""
    problems: list[tuple[Loc, str]] = []
    first_seen: dict[object, int] = {}
    for index, (name, is_default) in enumerate(rules):
        if name in first_seen:
            problems.append(
                (
                    (index, "name"),
                    f"duplicate rule name {name!r} (also rules[{first_seen[name]}]); each case"
                    " records the rule that decided it, so names must differ",
                )
            )
        first_seen.setdefault(name, index)
        if is_default and index != len(rules) - 1:
            unreachable = ", ".join(str(later) for later, _ in rules[index + 1 :])
            problems.append(
                (
                    (index,),
                    f"rule {name!r} has no `when`, so it matches every order and the rules after"
                    f" it ({unreachable}) would never be used; move it to the end or give it a"
                    " `when`",
                )
            )
    return problems


class _RuleListProblems(ValueError):
    """Problems found across the rule list, each at its own place (a rule index and a key)."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


class OperatorPolicy(_PolicyModel):
    """How long an operator has to answer, and what happens when nobody does."""

    deadline_hours: float = Field(default=24, gt=0, le=24 * 14)
    on_deadline: Literal["cancel", "escalate"] = "cancel"

    @property
    def deadline(self) -> timedelta:
        return timedelta(hours=self.deadline_hours)


class Recommendation(_PolicyModel):
    """What policy says to do with a case, which rule said so, and what it looked at."""

    action: CancelRequestAction
    rule: str
    reason: str
    inputs: dict[str, JsonValue]


class CancelRequestPolicy(_PolicyModel):
    """A buyer asked Amazon to cancel a merchant-fulfilled order: carry it out, or ask a person."""

    pending_window_minutes: int = Field(default=30, ge=0, le=24 * 60)
    rules: tuple[Rule, ...]
    operator: OperatorPolicy = OperatorPolicy()

    @field_validator("rules")
    @classmethod
    def _rules_make_a_table(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        if not rules:
            raise _owner_error(
                "there must be at least one rule; end with a default rule (no `when`)"
            )
        problems = _rule_table_problems([(r.name, r.is_default) for r in rules])
        if problems:
            raise _RuleListProblems(problems)
        return rules

    def recommend(self, order: Order, now: datetime) -> Recommendation:
        """Decide a buyer's cancel request: nothing to do, cancel as buyer-caused, or ask a person.

        Henpin's own checks come first (Amazon's side already settled it, or it can no longer be
        cancelled); then the owner's rules, first match wins. With no match, a person decides.
        """
        now = _as_utc(now)
        minutes = (now - _as_utc(order.created_time)).total_seconds() / 60
        facts = _facts(order)
        inputs = _inputs(order, facts, now, minutes)
        status = order.fulfillment_status

        def says(action: CancelRequestAction, rule: str, reason: str) -> Recommendation:
            return Recommendation(action=action, rule=rule, reason=reason, inputs=inputs)

        if status is FulfillmentStatus.CANCELLED:
            return says("nothing_to_do", "already-cancelled", "the order is already cancelled")
        if (order.fulfilled_by or "").upper() == "AMAZON":
            return says(
                "nothing_to_do",
                "fulfilled-by-amazon",
                "Amazon fulfils this order, so Amazon handles the buyer's cancel request",
            )
        if status in (FulfillmentStatus.SHIPPED, FulfillmentStatus.PARTIALLY_SHIPPED):
            shipped = "has shipped" if status is FulfillmentStatus.SHIPPED else "has partly shipped"
            return says(
                "ask_operator",
                "already-shipped",
                f"the order {shipped}, and a shipped order cannot be cancelled; contact the buyer"
                " (refuse delivery or return) or cancel the unshipped items by hand",
            )
        if status is FulfillmentStatus.PENDING_AVAILABILITY:
            return says(
                "nothing_to_do",
                "pre-order",
                "the order is a pre-order not yet released; Amazon cancels it for the buyer",
            )
        if status is FulfillmentStatus.PENDING:
            inputs["pending_window_minutes"] = self.pending_window_minutes
            if minutes <= self.pending_window_minutes:
                return says(
                    "nothing_to_do",
                    "pending-window",
                    f"the order is still pending ({minutes:.0f} min old, within the"
                    f" {self.pending_window_minutes}-minute window); Amazon cancels it itself",
                )
            return says(
                "ask_operator",
                "pending-overdue",
                f"the order is still pending {minutes:.0f} minutes after it was placed, longer"
                f" than the {self.pending_window_minutes}-minute window; check it in Seller"
                " Central",
            )
        if status is not FulfillmentStatus.UNSHIPPED:
            return says(
                "ask_operator",
                "unexpected-status",
                f"the order's status is {status.value}, which Henpin does not decide alone",
            )
        for rule in self.rules:
            if rule.when is None:
                return says(
                    rule.then, rule.name, f"no earlier rule matched (default rule {rule.name})"
                )
            because = rule.when.explain_match(facts)
            if because is not None:
                return says(rule.then, rule.name, f"rule {rule.name}: {' and '.join(because)}")
        return says(
            "ask_operator", "no-rule-matched", "no rule matched this order, so a person decides"
        )


# --- Sections to come (issue 3, issue 4). Optional, so files without them stay valid. ------------


class _LaterSection(_PolicyModel):
    """A case type whose rules are not written yet; today it only sets the operator's deadline.

    Its rules will be added here as optional keys, so existing files stay valid.
    """

    operator: OperatorPolicy = OperatorPolicy()


class ReturnRequestPolicy(_LaterSection):
    """A buyer asked to return an item (Amazon expects an answer within 24 hours)."""


class CancelByMessagePolicy(_LaterSection):
    """A buyer asked to cancel by message instead of through Your Orders."""


class RefusedDeliveryPolicy(_LaterSection):
    """A parcel was refused or not collected and is coming back."""


class AddressErrorPolicy(_LaterSection):
    """A parcel came back because the address was wrong."""


class RetentionPolicy(_PolicyModel):
    """How long buyers' personal data (names, addresses) is kept after a case closes."""

    buyer_data_days: int = Field(default=90, ge=1, le=3650)


class Policy(_PolicyModel):
    """The whole `policies.yaml`. `version` names this exact file: record it on every case."""

    schema_version: Literal[1] = Field(alias="version")
    cancel_request: CancelRequestPolicy
    return_request: ReturnRequestPolicy | None = None
    cancel_by_message: CancelByMessagePolicy | None = None
    refused_delivery: RefusedDeliveryPolicy | None = None
    address_error: AddressErrorPolicy | None = None
    retention: RetentionPolicy | None = None

    _digest: str | None = PrivateAttr(default=None)

    @property
    def version(self) -> str:
        """Schema version and a content hash, e.g. `v1-3f2a9c0b1d2e` (changes with any edit)."""
        digest = self._digest or _sha12(self.model_dump_json(by_alias=True).encode())
        return f"v{self.schema_version}-{digest}"


# --- Loading ------------------------------------------------------------------------------------


def load_policy(path: Path) -> Policy:
    """Read and check a policy file; every problem is reported with file, line and key path."""
    try:
        content = path.read_bytes()
    except OSError as e:
        raise PolicyError(str(path), [PolicyProblem(None, "", f"cannot read: {e.strerror}")]) from e
    return parse_policy(content, source=str(path))


def parse_policy(content: bytes, source: str = "policies.yaml") -> Policy:
    """Parse policy text (e.g. a stored copy, for replay). `source` names it in messages."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        problem = PolicyProblem(None, "", f"not UTF-8 text ({e.reason} at byte {e.start})")
        raise PolicyError(source, [problem]) from e
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        raise PolicyError(source, [_syntax_problem(e)]) from e
    except yaml.YAMLError as e:
        raise PolicyError(source, [PolicyProblem(1, "", f"YAML syntax error: {e}")]) from e

    if root is None:
        problem = PolicyProblem(1, "", "the file is empty; it should start with `version: 1`")
        raise PolicyError(source, [problem])
    problems = list(_duplicate_keys(root, ()))
    try:
        policy = Policy.model_validate(data)
    except ValidationError as e:
        problems.extend(_validation_problems(e, root, data))
        policy = None
    if problems or policy is None:
        unique = sorted(set(problems), key=lambda p: (p.line or 0, p.key_path, p.message))
        raise PolicyError(source, unique)
    policy._digest = _sha12(content)
    return policy


def check_policy_file(path: Path) -> str:
    """One line for `henpin policy check`: the file is usable, and what it says in brief."""
    policy = load_policy(path)
    cancel = policy.cancel_request
    defaults = [r.name for r in cancel.rules if r.is_default]
    fallback = (
        f"default {defaults[0]}" if defaults else "no default: unmatched orders go to a person"
    )
    return (
        f"{path}: OK, policy {policy.version}; cancel_request: {len(cancel.rules)} rules"
        f" ({fallback}), pending window {cancel.pending_window_minutes} min, operator deadline"
        f" {cancel.operator.deadline_hours:g} h then {cancel.operator.on_deadline}"
    )


class PolicyHolder:
    """The policy in force while Henpin runs; follows edits of the file.

    A bad edit does not stop anything: the last good policy stays in force and `error` says what
    is wrong with the file, for the inbox to show. Safe to share between threads.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._policy: Policy | None = None
        self._problem: PolicyError | None = None  # what is wrong with the file on disk, if anything
        self._read_digest: str | None = None  # of the bytes last read, good or bad

    @property
    def error(self) -> str | None:
        """Why the file on disk is not the policy in force; None when it is."""
        with self._lock:
            if self._problem is None:
                return None
            if self._policy is None:
                return str(self._problem)
            return f"{self._problem}\nThe last good policy ({self._policy.version}) stays in force."

    def current(self) -> Policy:
        """The policy in force, reloading the file if its content changed since last time.

        Raises PolicyError only when no good policy was ever loaded.
        """
        with self._lock:
            self._refresh()
            if self._policy is None:
                assert self._problem is not None
                raise PolicyError(self._problem.source, self._problem.problems)
            return self._policy

    def _refresh(self) -> None:
        # Reading a few kilobytes each time is cheaper than trusting mtimes: two quick edits can
        # share an mtime, and an editor may swap the file for a new one.
        try:
            content = self.path.read_bytes()
        except OSError as e:
            problem = PolicyProblem(None, "", f"cannot read: {e.strerror}")
            self._problem = PolicyError(str(self.path), [problem])
            self._read_digest = None
            return
        digest = hashlib.sha256(content).hexdigest()
        if digest == self._read_digest:
            return
        self._read_digest = digest
        try:
            self._policy = parse_policy(content, source=str(self.path))
            self._problem = None
        except PolicyError as e:
            self._problem = e


# --- Helpers ------------------------------------------------------------------------------------


def _sha12(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:12]


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _format_money(amount: Decimal, currency: str) -> str:
    places = 0 if currency == "JPY" else 2
    return f"{amount:,.{places}f} {currency}"


def _facts(order: Order) -> _OrderFacts:
    value = order.value
    return _OrderFacts(
        value_amount=value.amount if value else None,
        value_currency=value.currency if value else None,
        skus=tuple(order.skus),
        marketplace_id=order.marketplace_id,
        buyer_reason=order.buyer_cancel_reason,
    )


def _inputs(
    order: Order, facts: _OrderFacts, now: datetime, minutes: float
) -> dict[str, JsonValue]:
    """The order's facts as the rules saw them, JSON-ready, so a replay can check its footing."""
    value: JsonValue = None
    if facts.value_amount is not None and facts.value_currency is not None:
        value = {"amount": str(facts.value_amount), "currency": facts.value_currency}
    return {
        "order_id": order.order_id,
        "marketplace_id": facts.marketplace_id,
        "fulfillment_status": order.fulfillment_status.value,
        "fulfilled_by": order.fulfilled_by,
        "created_time": _as_utc(order.created_time).isoformat(),
        "evaluated_at": now.isoformat(),
        "minutes_since_order": round(minutes, 1),
        "order_value": value,
        "skus": list(facts.skus),
        "buyer_reason": facts.buyer_reason,
    }


def _syntax_problem(e: yaml.MarkedYAMLError) -> PolicyProblem:
    mark = e.problem_mark or e.context_mark
    line = mark.line + 1 if mark is not None else 1
    what = e.problem or "cannot read this"
    if e.context and e.context_mark is not None and e.context_mark.line + 1 != line:
        what += f" ({e.context} that starts on line {e.context_mark.line + 1})"
    elif e.context:
        what += f" ({e.context})"
    hint = "check the indentation, the brackets, and the space after each ':'"
    return PolicyProblem(line, "", f"YAML syntax error: {what}; {hint}")


def _key_path(loc: Loc) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _line_of(root: yaml.Node, loc: Loc) -> int:
    """The 1-based line of the deepest node of `loc` present in the file (a key's own line)."""
    node = root
    line = root.start_mark.line
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if found is None:
                break
            line = found[0].start_mark.line
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line
        else:
            break
    return line + 1


def _validation_problems(
    error: ValidationError, root: yaml.Node, data: object
) -> Iterator[PolicyProblem]:
    yield from _raw_rule_table_problems(data, root)
    for err in error.errors():
        loc: Loc = tuple(p for p in err["loc"] if p != "[key]")
        if loc and loc[0] == "version" and err["type"] == "literal_error":
            msg = f"this Henpin reads policy schema version {SCHEMA_VERSION} (got {err['input']!r})"
            yield PolicyProblem(_line_of(root, loc), "version", msg)
            continue
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, _RuleListProblems):
            for where, message in cause.problems:
                place = loc + where
                yield PolicyProblem(_line_of(root, place), _key_path(place), message)
            continue
        yield PolicyProblem(_line_of(root, loc), _key_path(loc), _plain_message(err, loc))


_RULE_KEYS = {"name", "when", "then"}


def _raw_rule_table_problems(data: object, root: yaml.Node) -> Iterator[PolicyProblem]:
    """The rule-table checks on the raw data, for when a bad rule kept pydantic from them."""
    section = data.get("cancel_request") if isinstance(data, dict) else None
    rules = section.get("rules") if isinstance(section, dict) else None
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        return
    # A rule with an unknown key (say `wehn`) is reported as such, not also as a default rule.
    table = [(r.get("name"), r.get("when") is None and set(r) <= _RULE_KEYS) for r in rules]
    for where, message in _rule_table_problems(table):
        place = ("cancel_request", "rules", *where)
        yield PolicyProblem(_line_of(root, place), _key_path(place), message)


def _plain_message(err: Any, loc: Loc) -> str:
    """Pydantic's message, reworded where an owner would not follow it, with the bad value."""
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        return f"unknown key {loc[-1]!r}{hint}; keys allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return "required key is missing"
    if kind == _OWNER_ERROR:
        return str(err["msg"])
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    got = "nothing" if err["input"] is None else repr(err["input"])
    if not loc and kind == "model_type":
        return "the file should be `key: value` lines, starting with `version: 1`"
    if kind in ("model_type", "dict_type") and err["input"] is None:
        return "this section is empty; fill it in or remove the key"
    if kind in ("decimal_parsing", "decimal_type", "float_parsing", "float_type"):
        return f"Input should be a valid number (got {got})"
    if kind in ("tuple_type", "list_type"):
        return f"Input should be a list, e.g. [A, B] (got {got})"
    if kind == "string_type" and isinstance(err["input"], bool):
        return f"YAML reads this as {err['input']}; put the text in quotes, e.g. 'NO' (got {got})"
    return f"{err['msg']} (got {got})"


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys the model at `loc` accepts, for 'did you mean' hints."""
    annotation: Any = Policy
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, int):
            args = typing.get_args(annotation)
            annotation = args[0] if args else Any
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = next(
                (f for n, f in annotation.model_fields.items() if part in (n, f.alias)), None
            )
            annotation = field.annotation if field is not None else Any
        else:
            return []
    model = _unwrap(annotation)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and `| None` to reach the type that holds the keys."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = rest[0] if len(rest) == 1 else annotation
            if len(rest) != 1:
                return annotation
        else:
            return annotation


def _duplicate_keys(node: yaml.Node, loc: Loc) -> Iterator[PolicyProblem]:
    """PyYAML silently keeps the last of two equal keys; in a policy that hides an edit."""
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            if name in first:
                message = f"duplicate key (first at line {first[name]}); only one may stay"
                yield PolicyProblem(line, _key_path((*loc, name)), message)
            first.setdefault(name, line)
            yield from _duplicate_keys(value, (*loc, name))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, index))
