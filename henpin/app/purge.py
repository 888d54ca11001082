"""Buyers' privacy, as the CLI asks for it: `henpin purge` takes buyers' personal data out of
cases closed longer ago than the policy's retention (`retention.buyer_data_days`) now, instead
of waiting for housekeeping, in the case store and in what Prefect keeps of each case; or, as a
dry run, says what would go. The same purge housekeeping runs each round
(henpin/housekeeping.py)."""

from __future__ import annotations

from datetime import datetime

from henpin.housekeeping import purge_buyer_data_now
from henpin.policy import load_policy
from henpin.settings import Settings
from henpin.store.purge import PurgeReport


def purge_buyer_data(settings: Settings, now: datetime, *, dry_run: bool = False) -> PurgeReport:
    """Purge (or, on a dry run, count) the buyer data of cases closed longer ago than the
    retention of the policy in `settings.policies`. A bad policy file raises `PolicyError`,
    naming the file, line and key."""
    days = load_policy(settings.policies).retention.buyer_data_days
    return purge_buyer_data_now(settings.store_url, now, days, dry_run=dry_run)
