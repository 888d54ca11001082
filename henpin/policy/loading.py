"""Reading `policies.yaml`: the whole document, its version, and problems located for the owner.

The file is parsed once, at the edge, into frozen models; a bad file fails with the file, line and
key path of every problem. While Henpin runs, `PolicyHolder` picks up edits and keeps the last
good policy in force when an edit is bad.
"""

from __future__ import annotations

import difflib
import hashlib
import threading
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, PrivateAttr, ValidationError

from henpin.policy._base import (
    OWNER_ERROR,
    Loc,
    LocatedProblems,
    PolicyError,
    PolicyModel,
    PolicyProblem,
)
from henpin.policy.address_error import AddressErrorPolicy
from henpin.policy.cancel_by_message import CancelByMessagePolicy
from henpin.policy.cancel_request import CancelRequestPolicy, rule_table_problems
from henpin.policy.notifications import NotificationsPolicy
from henpin.policy.refused_delivery import RefusedDeliveryPolicy
from henpin.policy.return_request import ReturnRequestPolicy

SCHEMA_VERSION = 1

# A policy file is a person's text of a few hundred lines (the shipped one is about 30 KB). YAML
# aliases let a small file stand for a huge document (each level of `[*a, *a, ...]` multiplies
# it), which would take memory and minutes to check: more than this is refused, not read.
MAX_POLICY_BYTES = 1_000_000
MAX_ALIASES = 100
MAX_NODES = 100_000  # values in the document with every alias written out


class RetentionPolicy(PolicyModel):
    """How long buyers' personal data (names, addresses) is kept after a case closes."""

    buyer_data_days: int = Field(default=90, ge=1, le=3650)


class Policy(PolicyModel):
    """The whole `policies.yaml`. `version` names this exact file: record it on every case.

    Every section but `cancel_request` may be left out; it then has Henpin's defaults (see each
    section's model), so flows always receive a typed section."""

    schema_version: Literal[1] = Field(alias="version")
    cancel_request: CancelRequestPolicy
    return_request: ReturnRequestPolicy = ReturnRequestPolicy()
    cancel_by_message: CancelByMessagePolicy = CancelByMessagePolicy()
    refused_delivery: RefusedDeliveryPolicy = RefusedDeliveryPolicy()
    address_error: AddressErrorPolicy = AddressErrorPolicy()
    retention: RetentionPolicy = RetentionPolicy()
    notifications: NotificationsPolicy = NotificationsPolicy()

    _digest: str | None = PrivateAttr(default=None)

    @property
    def version(self) -> str:
        """Schema version and a content hash, e.g. `v1-3f2a9c0b1d2e` (changes with any edit)."""
        digest = self._digest or _sha12(self.model_dump_json(by_alias=True).encode())
        return f"v{self.schema_version}-{digest}"

    def sections_set(self) -> list[str]:
        """The optional sections the file sets itself (the others use Henpin's defaults)."""
        return [name for name in _OPTIONAL_SECTIONS if name in self.model_fields_set]


_OPTIONAL_SECTIONS = [
    n for n in Policy.model_fields if n not in ("schema_version", "cancel_request")
]


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
    if len(content) > MAX_POLICY_BYTES:
        problem = PolicyProblem(
            None,
            "",
            f"the file is {len(content):,} bytes; a policy file may be at most "
            f"{MAX_POLICY_BYTES:,} bytes",
        )
        raise PolicyError(source, [problem])
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        problem = PolicyProblem(None, "", f"not UTF-8 text ({e.reason} at byte {e.start})")
        raise PolicyError(source, [problem]) from e
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            if root is not None:
                _refuse_alias_bombs(text, root, source)
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


def _refuse_alias_bombs(text: str, root: yaml.Node, source: str) -> None:
    """Refuse a document that uses many aliases or grows past MAX_NODES once they are expanded,
    before anything walks it."""
    aliases = sum(
        1 for t in yaml.scan(text, Loader=yaml.SafeLoader) if isinstance(t, yaml.AliasToken)
    )
    if aliases > MAX_ALIASES:
        raise PolicyError(
            source,
            [
                PolicyProblem(
                    None,
                    "",
                    f"the file uses {aliases} YAML aliases (*name); a policy file may use at "
                    f"most {MAX_ALIASES}: write the values out",
                )
            ],
        )
    seen = 0
    stack: list[yaml.Node] = [root]
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise PolicyError(
                source,
                [
                    PolicyProblem(
                        node.start_mark.line + 1,
                        "",
                        f"with its YAML aliases written out the document has more than "
                        f"{MAX_NODES:,} values; a policy file may not grow like that",
                    )
                ],
            )
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in node.value for n in pair)


def check_policy_file(path: Path) -> str:
    """One line for `henpin policy check`: the file is usable, and what it says in brief."""
    policy = load_policy(path)
    cancel = policy.cancel_request
    defaults = [r.name for r in cancel.rules if r.is_default]
    fallback = (
        f"default {defaults[0]}" if defaults else "no default: unmatched orders go to a person"
    )
    own = policy.sections_set()
    others = f"; also sets {', '.join(own)}" if own else ""
    rest = [n for n in _OPTIONAL_SECTIONS if n not in own]
    defaults_used = f"; Henpin's defaults for {', '.join(rest)}" if rest else ""
    return (
        f"{path}: OK, policy {policy.version}; cancel_request: {len(cancel.rules)} rules"
        f" ({fallback}), pending window {cancel.pending_window_minutes} min, operator deadline"
        f" {cancel.operator.deadline_hours:g} h then {cancel.operator.on_deadline}"
        f"{others}{defaults_used}"
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

    def problem(self) -> str | None:
        """Reread the file if it changed; then why it is not the policy in force (None when it
        is). For processes that only report on the file, such as the inbox."""
        with self._lock:
            self._refresh()
        return self.error

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
        if isinstance(cause, LocatedProblems):
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
    for where, message in rule_table_problems(table):
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
    if kind == OWNER_ERROR:
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
    if kind == "string_type" and isinstance(err["input"], dict):
        return (
            "YAML reads text starting with { as a list of keys; put the whole text in quotes,"
            f' e.g. "{{order_id}} ..." (got {got})'
        )
    return f"{err['msg']} (got {got})"


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys the model at `loc` accepts, for 'did you mean' hints."""
    annotation: Any = Policy
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, int):
            args = typing.get_args(annotation)
            annotation = args[0] if args else Any
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
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
