from datetime import UTC, datetime, timedelta

import pytest

from crm_kit.errors import InvalidArgument
from crm_reporting import domain

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def test_period_may_be_open_on_either_side_or_empty() -> None:
    assert domain.validate_period(None, None) == domain.Period()
    assert domain.validate_period(T0, None) == domain.Period(T0, None)
    assert domain.validate_period(T0, T0) == domain.Period(T0, T0)


def test_start_after_end_names_start_time() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_period(T0 + timedelta(seconds=1), T0)
    assert err.value.field_violations[0][0] == "start_time"


def test_speed_to_lead_needs_both_times_and_is_never_negative() -> None:
    assert domain.speed_to_assign_seconds(T0, T0 + timedelta(seconds=90)) == 90.0
    assert domain.speed_to_assign_seconds(None, T0) is None
    assert domain.speed_to_assign_seconds(T0, None) is None
    assert domain.speed_to_assign_seconds(T0, T0 - timedelta(seconds=2)) == 0.0


def test_deal_total_prefers_the_stated_total_then_sums_items() -> None:
    items = [domain.ItemAmount(1, 459900, "ils"), domain.ItemAmount(2, 5000, "ILS")]
    assert domain.deal_total(100, "usd", items) == (100, "USD")
    assert domain.deal_total(0, "", items) == (469900, "ILS")
    assert domain.deal_total(0, "", []) == (0, "")
    with pytest.raises(domain.MixedCurrencies):
        domain.deal_total(0, "", [*items, domain.ItemAmount(1, 1, "IRR")])


def test_source_report_merges_leads_and_deals_sorted_by_source_and_currency() -> None:
    rows = domain.build_source_report(
        {"tv": 1, "radio": 2, "": 1},
        [
            domain.DealAggregate("radio", True, "ILS", 2, 1000),
            domain.DealAggregate("radio", True, "IRR", 1, 5_000_000),
            domain.DealAggregate("radio", False, "", 3, 0),
            domain.DealAggregate("press", True, "ILS", 1, 700),
        ],
    )
    assert [r.source for r in rows] == ["press", "radio", "tv", domain.UNKNOWN_SOURCE]
    press, radio, tv, unknown = rows
    assert (press.leads, press.won_deals, press.revenue_by_currency()) == (0, 1, [("ILS", 700)])
    assert (radio.leads, radio.won_deals, radio.lost_deals) == (2, 3, 3)
    assert radio.revenue_by_currency() == [("ILS", 1000), ("IRR", 5_000_000)]
    assert (tv.leads, tv.won_deals, tv.lost_deals, tv.revenue) == (1, 0, 0, {})
    assert unknown.leads == 1


def test_source_report_is_empty_without_activity() -> None:
    assert domain.build_source_report({"radio": 0}, []) == []


def test_campaign_cost_per_lead_and_return() -> None:
    row = domain.CampaignRow("c1", "radio", "רדיו", cost_minor=1000, currency_code="ILS", leads=3)
    assert row.cost_per_lead_minor() == 333
    assert (
        domain.CampaignRow("c1", "radio", "x", cost_minor=1001, currency_code="ILS", leads=2).cost_per_lead_minor()
        == 501
    )
    assert domain.CampaignRow("c1", "radio", "x", leads=2).cost_per_lead_minor() is None
    domain.add_deals({"c1": row}, "c1", domain.DealAggregate("", True, "ILS", 2, 2500))
    domain.add_deals({"c1": row}, "c1", domain.DealAggregate("", True, "USD", 1, 99))
    domain.add_deals({"c1": row}, "c1", domain.DealAggregate("", False, "", 1, 0))
    assert (row.won_deals, row.lost_deals, row.revenue_by_currency()) == (3, 1, [("ILS", 2500), ("USD", 99)])
    assert row.return_on_cost() == 2.5
