"""The emulator's one marketplace table (it does not import Henpin) agrees with Henpin's, field by
field, and every emulator module that needs a marketplace fact reads it from there."""

from __future__ import annotations

from henpin.marketplaces import MARKETPLACES as HENPIN
from henpin.policy._base import decimals_of


def test_the_emulator_table_has_every_marketplace_henpin_knows() -> None:
    from emulator.marketplaces import MARKETPLACES

    assert len(HENPIN) == 23
    assert set(MARKETPLACES) == set(HENPIN)


def test_the_emulator_table_agrees_with_henpin_field_by_field() -> None:
    from emulator.marketplaces import MARKETPLACES

    for marketplace_id, ours in HENPIN.items():
        theirs = MARKETPLACES[marketplace_id]
        assert (theirs.country, theirs.region, theirs.currency) == (
            ours.country,
            ours.region,
            ours.currency,
        ), marketplace_id
        assert theirs.time_zone == ours.time_zone, marketplace_id
        assert theirs.name == ours.name, marketplace_id
        assert theirs.decimals == decimals_of(ours.currency), marketplace_id


def test_emulator_modules_read_the_one_table() -> None:
    from emulator import amazon_refunds, finances, regions, returns_report
    from emulator.marketplaces import MARKETPLACES

    for marketplace_id, m in MARKETPLACES.items():
        assert returns_report.LOCAL_TIME_ZONES[marketplace_id] == m.time_zone
        assert amazon_refunds.LOCAL_TIME_ZONES[marketplace_id] == m.time_zone
        assert regions.region_of(marketplace_id) == m.region
        assert finances.MARKETPLACE_NAMES[marketplace_id] == m.name
        assert finances.decimals_of(m.currency) == m.decimals
    # Currencies of no marketplace are not the emulator's to guess: two decimals, as Henpin.
    for currency in ("HUF", "TWD"):
        assert finances.decimals_of(currency) == decimals_of(currency)
