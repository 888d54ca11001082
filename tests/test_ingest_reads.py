"""Ingestion's reads say in their own result that Amazon did not answer (the flow then leaves
the region for the next pass), instead of raising the adapter's errors up to the flow."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from henpin.amazon import AmazonAdapter, AmazonAuthError, AmazonUnavailable
from henpin.context import Context, install
from henpin.settings import Settings
from tasks.orders import find_return_requests, read_order_now, scan_updated_orders

SINCE = datetime(2026, 12, 1, tzinfo=UTC)
US = "ATVPDKIKX0DER"


class Failing:
    """An adapter whose every read fails with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.error

        return fail


def with_adapter(tmp_path: Path, error: Exception) -> None:
    adapter = cast(AmazonAdapter, Failing(error))
    install(Context(Settings(home=tmp_path), adapter=adapter))


@pytest.mark.parametrize(
    "error",
    [
        AmazonUnavailable("Amazon did not answer (503).", operation="searchOrders"),
        AmazonAuthError("refused", operation="getOrder"),
    ],
)
def test_a_read_that_amazon_does_not_answer_says_so(tmp_path: Path, error: Exception) -> None:
    with_adapter(tmp_path, error)
    found = scan_updated_orders.fn([US], SINCE)
    returns = find_return_requests.fn([US], SINCE)
    order = read_order_now.fn("113-0000000-0000001", US)
    if isinstance(error, AmazonAuthError):
        assert found.login_refused and found.not_answered is None
        assert returns.login_refused and returns.requests == []
    else:
        assert found.not_answered == str(error) and not found.login_refused
        assert returns.not_answered == str(error) and returns.requests == []
    assert order.order is None and order.not_answered == str(error)


def test_each_test_starts_with_a_fresh_context(tmp_path: Path) -> None:
    """conftest installs a fresh context: nothing another test installed is seen."""
    from henpin.context import current

    assert current()._adapter is None
    with_adapter(tmp_path, RuntimeError("x"))
    assert current()._adapter is not None
