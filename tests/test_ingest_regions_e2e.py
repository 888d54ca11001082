"""Ingestion region by region, on real parts (emulator over HTTP, Prefect, SQLite store): one
region's Amazon failing does not stop the others, and a region's returns report starts from its
own open cases only.
"""

# ruff: noqa: F811 - the e2e fixtures of test_case_types_e2e are imported and used by name

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.test_case_types_e2e import (  # noqa: F401 - fixtures used by name
    control,
    emulator,
    henpin,
    mailbox,
    shipped_order,
    the_case,
)
from tests.test_returns_e2e import (  # noqa: F401 - fixture used by name
    JP,
    emulator_now,
    fresh_returns_reports,
    post_return,
    post_shipped_order,
)

pytestmark = [pytest.mark.e2e]

US = "ATVPDKIKX0DER"


def checkpoints(url: str) -> dict[str, datetime]:
    from henpin.store.db import session_scope
    from henpin.store.models import Checkpoint

    with session_scope(url) as s:
        return {c.name: c.at for c in s.query(Checkpoint).all()}


def test_one_region_failing_does_not_stop_the_others(
    henpin: str, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.ingest import ingest
    from tasks.ingest import returns_report_since
    from tasks.orders import find_return_requests

    # The task's own retries (minutes apart) are Prefect's business, not this test's.
    monkeypatch.setattr(
        "flows.ingest.find_return_requests", find_return_requests.with_options(retries=0)
    )
    now = emulator_now(emulator)
    us_order, jp_order = "113-0000037-0000037", "503-0000037-0000037"
    control(emulator, "POST", "orders", json=[shipped_order(us_order)])
    post_shipped_order(emulator, jp_order, now - timedelta(days=6), jp=True)
    control(emulator, "PUT", "return-settings", json={"marketplaces": {JP: "authorizeAll"}})
    post_return(emulator, us_order, inPolicy=False)
    post_return(emulator, jp_order, returnRequestDate=(now - timedelta(days=5)).isoformat())
    # North America's reports fail (Amazon unavailable there); the Far East answers.
    control(
        emulator,
        "PUT",
        "faults",
        json={
            "seed": 1,
            "rules": [
                {"operations": ["createReport"], "regions": ["NA"], "rate": 1, "fault": "503"}
            ],
        },
    )

    ingest()

    assert the_case(henpin, jp_order, "return-request") is not None
    assert the_case(henpin, us_order, "return-request") is None
    marks = checkpoints(henpin)
    assert "ingest:returns:FE" in marks and "ingest:returns:NA" not in marks
    assert "ingest:orders:NA" in marks  # NA's orders were read before its report failed

    # Each region's report starts from its own open cases: the Japanese case, requested five
    # days ago, moves FE's start back, not NA's.
    since = datetime.now(UTC)
    jp_requested = returns_report_since.fn(since, [JP])
    assert jp_requested < since - timedelta(days=4)
    assert returns_report_since.fn(since, [US]) == since

    # Amazon answers again: NA is read on the next pass.
    control(emulator, "PUT", "faults", json={"seed": 1, "rules": []})
    ingest()
    assert the_case(henpin, us_order, "return-request") is not None
    assert "ingest:returns:NA" in checkpoints(henpin)


def test_every_regions_returns_report_is_asked_for_before_any_orders_are_read(
    henpin: str, emulator: Any
) -> None:
    """Amazon takes minutes to make a returns report: a pass asks for every region's first, so
    they are made side by side while the orders are read, and reads each without asking again."""
    from flows.ingest import ingest

    now = emulator_now(emulator)
    us_order, jp_order = "113-0000038-0000038", "503-0000038-0000038"
    control(emulator, "POST", "orders", json=[shipped_order(us_order)])
    post_shipped_order(emulator, jp_order, now - timedelta(days=6), jp=True)
    post_return(emulator, us_order, inPolicy=False)
    post_return(emulator, jp_order, returnRequestDate=(now - timedelta(days=5)).isoformat())
    before = len(control(emulator, "GET", "calls"))

    ingest()

    assert the_case(henpin, us_order, "return-request") is not None
    assert the_case(henpin, jp_order, "return-request") is not None
    calls = control(emulator, "GET", "calls")[before:]
    operations = [c["operation"] for c in calls]
    created = [i for i, op in enumerate(operations) if op == "createReport"]
    assert {calls[i]["region"] for i in created} == {"NA", "EU", "FE"}
    # All asked for before any orders were read, and none asked for twice: each marketplace's
    # report was read (document or CANCELLED, no returns) from the one asked for.
    assert created and max(created) < operations.index("searchOrders")
    reports = control(emulator, "GET", "reports")
    assert len(created) == len(reports) == len({r["marketplaceIds"][0] for r in reports})
    assert operations.count("getReportDocument") == 2  # the US and the Japanese returns
