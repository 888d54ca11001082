"""Amazon's official SP-API models, read as the emulator's contract.

The models are vendored, unmodified, in ``emulator/spapi_models`` (Amazon's LICENSE and NOTICE
beside them; the commit they come from is in its README), so a fresh clone runs the whole suite.
``HENPIN_SPAPI_MODELS`` points to another copy, e.g. a newer one under test. From them the emulator takes each operation's usage plan (rate and
burst) and the JSON schemas it validates orders against. A machine without the models still runs
the emulator: rate limits then come from a built-in table of the same numbers and control-API
orders get a structural check only (see ``docs/emulator.md``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, FormatChecker

MODELS_ENV = "HENPIN_SPAPI_MODELS"
#: The pinned copy the project is tested against (Apache-2.0, Amazon; see its README).
VENDORED_MODELS = Path(__file__).resolve().parent / "spapi_models"

#: Model files the emulator serves, by API.
MODEL_FILES = {
    "orders": "orders_2026-01-01.json",
    "feeds": "feeds_2021-06-30.json",
    "reports": "reports_2021-06-30.json",
    "messaging": "messaging.json",
    "tokens": "tokens_2021-03-01.json",
    "finances": "financesV0.json",
    "transactions": "finances_2024-06-19.json",
}

# Used only when the models folder is absent (a fresh clone outside this workplace). The numbers
# are the models' own default usage plans, so behaviour does not change with or without them.
FALLBACK_USAGE_PLANS: dict[str, tuple[float, int]] = {
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    "createFeedDocument": (0.5, 15),
    "createFeed": (0.0083, 15),
    "getFeed": (2.0, 15),
    "getFeeds": (0.0222, 10),
    "getFeedDocument": (0.0222, 10),
    "cancelFeed": (2.0, 15),
    "createReport": (0.0167, 15),
    "getReport": (2.0, 15),
    "getReportDocument": (0.0167, 15),
    "listFinancialEventsByOrderId": (0.5, 30),
    "listTransactions": (0.5, 10),
}

_USAGE_PLAN = re.compile(r"\|\s*Rate[^\n]*\n\|[-\s|]+\n\|\s*([\d.]+)\s*\|\s*(\d+)\s*\|")


@dataclass(frozen=True)
class UsagePlan:
    """How many calls per second an operation allows on average (rate) and in a burst."""

    rate: float
    burst: int

    @property
    def header_value(self) -> str:
        """The rate as Amazon prints it in ``x-amzn-RateLimit-Limit``."""
        return f"{self.rate:g}"


def default_models_dir() -> Path:
    """The models folder: ``HENPIN_SPAPI_MODELS``, else the vendored ``emulator/spapi_models``."""
    configured = os.environ.get(MODELS_ENV)
    if configured:
        return Path(configured)
    return VENDORED_MODELS


def model_path(api: str, models_dir: Path | None = None) -> Path:
    """Path of one API's swagger file inside the models folder."""
    return (models_dir or default_models_dir()) / "models" / MODEL_FILES[api]


@cache
def _load(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded


def load_model(api: str, models_dir: Path | None = None) -> dict[str, Any] | None:
    """One API's swagger document, or None when the models folder is not on this machine."""
    return _load(model_path(api, models_dir))


def models_available(models_dir: Path | None = None) -> bool:
    """True when the Orders model (the one order validation needs) can be read."""
    return load_model("orders", models_dir) is not None


def usage_plans(models_dir: Path | None = None) -> dict[str, UsagePlan]:
    """Every operation's default usage plan, read from the models' descriptions.

    Amazon states each plan as a markdown table in the operation's description; operations the
    models do not cover (or a missing models folder) fall back to the built-in table.
    """
    plans = {op: UsagePlan(rate, burst) for op, (rate, burst) in FALLBACK_USAGE_PLANS.items()}
    for api in MODEL_FILES:
        model = load_model(api, models_dir)
        if model is None:
            continue
        for operations in model.get("paths", {}).values():
            for operation in operations.values():
                if not isinstance(operation, dict) or "operationId" not in operation:
                    continue
                found = _USAGE_PLAN.search(operation.get("description", ""))
                if found:
                    plans[operation["operationId"]] = UsagePlan(
                        float(found.group(1)), int(found.group(2))
                    )
    return plans


def _is_date_time(value: object) -> bool:
    # jsonschema only checks date-time with an optional package; the emulator checks it itself
    # because an order with an unparseable time would break searchOrders' time filters.
    if not isinstance(value, str):
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_is_date_time)
    return checker


def definition_validator(api: str, name: str, models_dir: Path | None = None) -> Draft4Validator:
    """A validator for one ``#/definitions/NAME`` schema of an API's swagger file.

    Swagger 2.0 schemas are JSON Schema draft 4 plus ``x-`` extensions (ignored by validators), so
    the definitions are wrapped in a draft 4 document whose ``$ref``s resolve locally.
    """
    model = load_model(api, models_dir)
    if model is None:
        raise FileNotFoundError(f"SP-API model {model_path(api, models_dir)} is not available")
    schema = {"$ref": f"#/definitions/{name}", "definitions": model["definitions"]}
    return Draft4Validator(schema, format_checker=_format_checker())
