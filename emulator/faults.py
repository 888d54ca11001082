"""Fault modes: Amazon on a bad day, on purpose, so Henpin's retries and reconciliation get tested.

Set with ``PUT /_emulator/faults`` (see docs/emulator.md)::

    {"seed": 7,
     "rules": [{"operations": ["createFeed", "getOrder"], "rate": 0.2, "fault": "500"},
               {"operations": ["*"], "rate": 0.05, "fault": "timeout", "delaySeconds": 2}],
     "feeds": {"fatalRate": 0.1, "partialErrorRate": 0.2, "underCountRate": 0.05},
     "reports": {"fatalRate": 0.1}}

Request faults apply to SP-API operations only (never LWA or the control API). For each request
the rules are tried in order; a rule whose operations match draws a number and, below ``rate``,
answers with its fault:

- ``429`` (QuotaExceeded), ``500`` (InternalFailure), ``503`` (ServiceUnavailable): an ErrorList.
- ``403`` (Unauthorized, "Access to requested resource is denied."): what Amazon answers a call
  the application has no role for (SP-API "Selling Partner API Roles"); with ``rate`` 1 on one
  operation it models a role the application lacks while the region's other calls work.
- ``malformed_json``: status 200 and a truncated JSON body.
- ``timeout``: holds the request ``delaySeconds`` (default 35, longer than the 30 s clients
  usually wait) and then drops the connection unanswered (``"then": "drop"``, the default) or
  processes and answers it late (``"then": "answer"``).
- ``slow``: processes and answers normally after ``delaySeconds`` (default 2).

A refusing fault (429, 500, 503, 403, malformed_json, timeout/drop) comes before quota and before the
operation, so the request changes nothing. With ``"afterApply": true`` (500, 503,
malformed_json, timeout/drop) the operation runs first and its success is then hidden behind the
fault: the "did it go through?" case (e.g. createFeed created the feed, the client saw a 500).

Feed faults are decided when a feed is created: it ends FATAL (nothing applied) with probability
``fatalRate``; otherwise each of its messages fails with probability ``partialErrorRate``, is
reported as an error in the processing report (code 5002, Amazon's "An internal error occurred.
Please resubmit your data.") and is not applied. A feed that does not end FATAL may also get a
processing report that does not add up, to test that clients do not believe it:
``underCountRate`` (its first message, MessageID 1, is not applied and the report neither counts
nor lists it: MessagesProcessed is one short), ``noSummaryRate`` (every message processed as
usual, but the report has no ProcessingSummary) and ``omitResultRate`` (message 1 fails, is
counted in MessagesWithError, but its Result is left out). ``gzipRate`` serves that share of
result documents GZIP-compressed (larger ones always are; see emulator/feeds.py). Report
faults: FATAL with probability ``fatalRate``.

Every draw is a hash of the seed and of what it decides (the operation and its request number,
the feed id and message id, the report id), so a run is repeatable with the same seed and the
same requests, whatever their timing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from emulator.state import EmulatorState

#: Feed fields for processing reports that do not add up (each names its fault) and for GZIP.
REPORT_FAULT_RATES = ("underCountRate", "noSummaryRate", "omitResultRate", "gzipRate")
#: The report faults, in the order they are drawn (a feed gets at most one).
REPORT_FAULTS = ("underCount", "noSummary", "omitResult")
FAULT_KINDS = ("429", "500", "503", "403", "timeout", "slow", "malformed_json")
#: Faults that may hide an applied operation (a 429 always means "not done").
AFTER_APPLY_KINDS = ("500", "503", "timeout", "malformed_json")
DEFAULT_DELAY_SECONDS = {"slow": 2.0, "timeout": 35.0}
#: A held or slow request never waits longer than this (wall seconds).
MAX_DELAY_SECONDS = 120.0
#: The SP-API operations the emulator serves: what a rule's ``operations`` may name.
SERVED_OPERATIONS = (
    "searchOrders",
    "getOrder",
    "createFeedDocument",
    "createFeed",
    "getFeed",
    "getFeeds",
    "cancelFeed",
    "getFeedDocument",
    "createReport",
    "getReport",
    "getReports",
    "cancelReport",
    "getReportDocument",
    "getMessagingActionsForOrder",
    "GetAttributes",
    "createConfirmDeliveryDetails",
    "createUnexpectedProblem",
    "createConfirmOrderDetails",
    "listFinancialEventsByOrderId",
    "listTransactions",
)


class FaultSettingsInvalid(ValueError):
    """The fault settings sent to the control API cannot be used; ``problems`` says why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[0])
        self.problems = problems


@dataclass(frozen=True)
class Fault:
    """What happens to one request (or what a rule would do)."""

    kind: str
    delay_seconds: float = 0.0
    after_apply: bool = False
    then: str = "drop"  # timeout only: "drop" the connection or "answer" late

    @property
    def delays_answer(self) -> bool:
        """Processed normally, after a delay (slow, or timeout that answers late)."""
        return self.kind == "slow" or (self.kind == "timeout" and self.then == "answer")

    @property
    def refuses_first(self) -> bool:
        """Answered with the fault before anything changes."""
        return not self.delays_answer and not self.after_apply


@dataclass(frozen=True)
class Rule:
    """A share of the requests to some operations that get a fault."""

    operations: tuple[str, ...]
    rate: float
    fault: Fault
    #: Only calls to these regions' base URLs (NA, EU, FE); empty: every call.
    regions: tuple[str, ...] = ()

    def matches(self, operation: str, region: str | None = None) -> bool:
        """Does the rule cover this operation (at this region's base URL)?"""
        if self.regions and region not in self.regions:
            return False
        return "*" in self.operations or operation in self.operations


@dataclass(frozen=True)
class FaultSettings:
    """Parsed fault settings; ``to_json`` gives them back in the control API's spelling."""

    seed: int
    rules: tuple[Rule, ...]
    feed_fatal_rate: float
    feed_partial_error_rate: float
    report_fatal_rate: float
    feed_under_count_rate: float = 0.0
    feed_no_summary_rate: float = 0.0
    feed_omit_result_rate: float = 0.0
    feed_gzip_rate: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Normalised settings (defaults filled in), as stored and as GET shows them."""
        rules = []
        for rule in self.rules:
            entry: dict[str, Any] = {
                "operations": list(rule.operations),
                "rate": rule.rate,
                "fault": rule.fault.kind,
            }
            if rule.fault.kind in DEFAULT_DELAY_SECONDS:
                entry["delaySeconds"] = rule.fault.delay_seconds
            if rule.regions:
                entry["regions"] = list(rule.regions)
            if rule.fault.kind == "timeout":
                entry["then"] = rule.fault.then
            if rule.fault.kind in AFTER_APPLY_KINDS:
                entry["afterApply"] = rule.fault.after_apply
            rules.append(entry)
        return {
            "seed": self.seed,
            "rules": rules,
            "feeds": {
                "fatalRate": self.feed_fatal_rate,
                "partialErrorRate": self.feed_partial_error_rate,
                # Added later: shown only when set, so older settings read back unchanged.
                **{
                    name: rate
                    for name, rate in zip(
                        REPORT_FAULT_RATES, self._report_fault_rates(), strict=True
                    )
                    if rate
                },
            },
            "reports": {"fatalRate": self.report_fatal_rate},
        }

    def _report_fault_rates(self) -> tuple[float, float, float, float]:
        return (
            self.feed_under_count_rate,
            self.feed_no_summary_rate,
            self.feed_omit_result_rate,
            self.feed_gzip_rate,
        )


def _rate(value: Any, where: str, problems: list[str]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        problems.append(f"{where} must be a number from 0 to 1.")
        return 0.0
    return float(value)


def _rule(entry: Any, where: str, problems: list[str]) -> Rule | None:
    if not isinstance(entry, dict):
        problems.append(f"{where} must be an object.")
        return None
    allowed = {"operations", "rate", "fault", "delaySeconds", "afterApply", "then", "regions"}
    for unknown in sorted(set(entry) - allowed):
        problems.append(f"{where}.{unknown} is not a rule field ({', '.join(sorted(allowed))}).")
    operations = entry.get("operations")
    if (
        not isinstance(operations, list)
        or not operations
        or not all(isinstance(o, str) for o in operations)
    ):
        problems.append(f'{where}.operations must be a list of operation names or ["*"].')
        operations = []
    for name in operations:
        if name != "*" and name not in SERVED_OPERATIONS:
            problems.append(
                f"{where}.operations: {name!r} is not an operation the emulator serves "
                f"({', '.join(SERVED_OPERATIONS)})."
            )
    kind = entry.get("fault")
    if kind not in FAULT_KINDS:
        problems.append(f"{where}.fault must be one of {', '.join(FAULT_KINDS)}.")
        return None
    delay = entry.get("delaySeconds", DEFAULT_DELAY_SECONDS.get(kind, 0.0))
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        delay = -1
    if not 0 <= delay <= MAX_DELAY_SECONDS:
        problems.append(f"{where}.delaySeconds must be from 0 to {MAX_DELAY_SECONDS:g}.")
    if "delaySeconds" in entry and kind not in DEFAULT_DELAY_SECONDS:
        problems.append(f"{where}.delaySeconds only applies to slow and timeout faults.")
    after_apply = entry.get("afterApply", False)
    if not isinstance(after_apply, bool):
        problems.append(f"{where}.afterApply must be true or false.")
    elif after_apply and kind not in AFTER_APPLY_KINDS:
        problems.append(f"{where}.afterApply applies to {', '.join(AFTER_APPLY_KINDS)} only.")
    then = entry.get("then", "drop")
    if then not in ("drop", "answer") or ("then" in entry and kind != "timeout"):
        problems.append(f'{where}.then is "drop" or "answer", for timeout faults only.')
    if after_apply is True and then == "answer":
        problems.append(f"{where}: afterApply with then=answer would be a plain slow answer.")
    rate = _rate(entry.get("rate"), f"{where}.rate", problems)
    fault = Fault(kind, float(max(delay, 0)), after_apply is True, str(then))
    regions = entry.get("regions", [])
    if not isinstance(regions, list) or not all(r in ("NA", "EU", "FE") for r in regions):
        problems.append(f'{where}.regions must be a list of "NA", "EU", "FE" (none: every one).')
        regions = []
    return Rule(tuple(operations), rate, fault, tuple(regions))


def _rates(
    body: dict[str, Any], name: str, fields: tuple[str, ...], problems: list[str]
) -> list[float]:
    section = body.get(name, {})
    if not isinstance(section, dict):
        problems.append(f"{name} must be an object.")
        return [0.0] * len(fields)
    for unknown in sorted(set(section) - set(fields)):
        problems.append(f"{name}.{unknown} is not a field ({', '.join(fields)}).")
    return [_rate(section.get(field, 0), f"{name}.{field}", problems) for field in fields]


def parse_settings(body: Any) -> FaultSettings:
    """Check fault settings from the control API; raises FaultSettingsInvalid."""
    if not isinstance(body, dict):
        raise FaultSettingsInvalid(["The body must be a JSON object with seed, rules, feeds."])
    problems: list[str] = []
    for unknown in sorted(set(body) - {"seed", "rules", "feeds", "reports"}):
        problems.append(f"{unknown} is not a setting (seed, rules, feeds, reports).")
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        problems.append("seed must be an integer.")
        seed = 0
    raw_rules = body.get("rules", [])
    if not isinstance(raw_rules, list):
        problems.append("rules must be a list.")
        raw_rules = []
    rules = [_rule(entry, f"rules[{i}]", problems) for i, entry in enumerate(raw_rules)]
    fatal, partial, under, no_summary, omit, gzip = _rates(
        body, "feeds", ("fatalRate", "partialErrorRate", *REPORT_FAULT_RATES), problems
    )
    (report_fatal,) = _rates(body, "reports", ("fatalRate",), problems)
    if problems:
        raise FaultSettingsInvalid(problems)
    return FaultSettings(
        seed,
        tuple(r for r in rules if r),
        fatal,
        partial,
        report_fatal,
        feed_under_count_rate=under,
        feed_no_summary_rate=no_summary,
        feed_omit_result_rate=omit,
        feed_gzip_rate=gzip,
    )


def draw(seed: int, *parts: object) -> float:
    """A number in [0, 1) determined by the seed and what is being decided."""
    text = ":".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


class Faults:
    """The fault modes in force for one emulator; their settings live in the state (persisted)."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        # The stored JSON object the parsed settings came from (kept, so identity is reliable).
        self._parsed: tuple[dict[str, Any], FaultSettings] | None = None

    @property
    def settings(self) -> FaultSettings | None:
        """The settings in force, None when there are no faults."""
        stored = self.state.faults
        if stored is None:
            return None
        if self._parsed is None or self._parsed[0] is not stored:
            self._parsed = (stored, parse_settings(stored))
        return self._parsed[1]

    def set(self, settings: FaultSettings) -> None:
        """Put settings in force (counters restart, so a seed replays the same faults)."""
        self.state.faults = settings.to_json()
        self.state.fault_counters.clear()

    def clear(self) -> None:
        """No more faults."""
        self.state.faults = None
        self.state.fault_counters.clear()

    def injected(self) -> dict[str, int]:
        """How many faults of each kind were injected since the settings were put in force."""
        prefix = "injected:"
        return {
            key[len(prefix) :]: count
            for key, count in sorted(self.state.fault_counters.items())
            if key.startswith(prefix)
        }

    def count(self, key: str) -> int:
        """Add one to a counter (kept with the settings); returns its value before."""
        number = self.state.fault_counters.get(key, 0)
        self.state.fault_counters[key] = number + 1
        return number

    def pick(self, operation: str, region: str | None = None) -> Fault | None:
        """The fault for this request of ``operation`` (at ``region``'s base URL), if any (call
        once per request)."""
        settings = self.settings
        if settings is None or not any(rule.matches(operation, region) for rule in settings.rules):
            return None
        number = self.count(f"requests:{operation}")
        for index, rule in enumerate(settings.rules):
            if (
                rule.matches(operation, region)
                and draw(settings.seed, operation, number, index) < rule.rate
            ):
                return rule.fault  # counted as injected when the call is logged with it
        return None

    def feed_plan(self, feed_id: str) -> dict[str, Any] | None:
        """What will go wrong with a feed being created: None, or its fault plan."""
        settings = self.settings
        report_rates = settings._report_fault_rates()[:3] if settings else ()
        if settings is None or not (
            settings.feed_fatal_rate or settings.feed_partial_error_rate or any(report_rates)
        ):
            return None
        fatal = draw(settings.seed, "feed", feed_id, "fatal") < settings.feed_fatal_rate
        if fatal:
            self.count("injected:feedFatal")
        plan: dict[str, Any] = {
            "seed": settings.seed,
            "fatal": fatal,
            "messageErrorRate": settings.feed_partial_error_rate,
        }
        for fault, rate in zip(REPORT_FAULTS, report_rates, strict=True):
            if not fatal and draw(settings.seed, "feed", feed_id, fault) < rate:
                plan["reportFault"] = fault
                self.count(f"injected:report{fault[0].upper()}{fault[1:]}")
                break
        return plan

    def gzip_result(self, document_id: str) -> bool:
        """Is this (small) result document served GZIP-compressed by the fault settings?"""
        settings = self.settings
        if settings is None or not settings.feed_gzip_rate:
            return False
        return draw(settings.seed, "gzip", document_id) < settings.feed_gzip_rate

    def report_fatal(self, report_id: str) -> bool:
        """Will this report, being created, end FATAL?"""
        settings = self.settings
        if settings is None or not settings.report_fatal_rate:
            return False
        fatal = draw(settings.seed, "report", report_id, "fatal") < settings.report_fatal_rate
        if fatal:
            self.count("injected:reportFatal")
        return fatal


def message_fails(plan: dict[str, Any] | None, feed_id: str, message_id: int) -> bool:
    """Does this message of a feed fail by fault (reported as an error, not applied)?"""
    if not plan or not plan.get("messageErrorRate"):
        return False
    chance = draw(plan["seed"], "feed", feed_id, "message", message_id)
    return chance < float(plan["messageErrorRate"])


def report_fault(plan: dict[str, Any] | None) -> str | None:
    """The processing-report fault decided for a feed (one of REPORT_FAULTS), if any."""
    fault = (plan or {}).get("reportFault")
    return str(fault) if fault in REPORT_FAULTS else None
