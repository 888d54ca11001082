"""Buyers' personal data is purged from closed cases after the policy's retention period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from henpin.domain import CaseType, FulfillmentStatus, Order
from henpin.store.db import migrate, session_scope
from henpin.store.models import Case
from tests.support import reset_process_caches

REPO = Path(__file__).resolve().parent.parent


def test_closed_cases_lose_buyer_data_after_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HENPIN_HOME", str(tmp_path))
    monkeypatch.setenv("HENPIN_POLICIES", str(REPO / "policies.yaml"))
    reset_process_caches()
    from tasks.cases import open_case
    from tasks.policy import policy_in_force
    from tasks.store import store_url
    from tasks.sweep import purge_buyer_data

    url = store_url()
    migrate(url)
    now = datetime.now(UTC)
    order = Order(
        order_id="111-P",
        marketplace_id="ATVPDKIKX0DER",
        created_time=now,
        last_updated_time=now,
        fulfillment_status=FulfillmentStatus.SHIPPED,
        buyer_name="Hanako Test",
        buyer_email="hanako-test@marketplace.amazon.com",
    )
    old_id, _ = open_case(
        CaseType.ADDRESS_ERROR, order, url=url, details={"confirmed_address": "1-2-3 Test"}
    )
    new_id, _ = open_case(CaseType.CANCEL_REQUEST, order, url=url)
    days = policy_in_force().retention.buyer_data_days
    with session_scope(url) as s:
        for case_id, age in ((old_id, days + 1), (new_id, 1)):
            case = s.get(Case, case_id)
            assert case is not None
            case.state, case.closed_at = "closed", now - timedelta(days=age)

    assert purge_buyer_data.fn(now=now) == [old_id]
    assert purge_buyer_data.fn(now=now) == []  # once
    with session_scope(url) as s:
        old, new = s.get(Case, old_id), s.get(Case, new_id)
        assert old is not None and new is not None
        assert "Hanako" not in repr(old.order_snapshot) + repr(old.details)
        assert "hanako-test" not in repr(old.order_snapshot)
        assert old.details["confirmed_address"] == "(purged)"
        assert old.personal_data_purged_at is not None
        assert new.order_snapshot["buyer_name"] == "Hanako Test"  # still within retention
    reset_process_caches()
