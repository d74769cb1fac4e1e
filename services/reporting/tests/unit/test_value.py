"""Customer value: a customer scores against every buyer's quintile cut points (recency the other
way round: the most recent fifth is 5), a figure at a cut point in the lower fifth; the segment is
scoring's table; lifetime value per year counts at least a month; too few buyers say so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crm_reporting.value import TooFewBuyers, edges, score

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 7, tzinfo=UTC)
EDGES = edges(100, [10, 30, 90, 200], [1, 1, 2, 4], [50_000, 100_000, 300_000, 900_000], "ILS")


def test_a_recent_frequent_big_spender_is_a_champion() -> None:
    found = score(
        EDGES, now=NOW, first_purchase=NOW - timedelta(days=730), last_purchase=NOW - timedelta(days=3),
        purchases=9, value_minor=2_000_000,
    )  # fmt: skip
    assert (found.rfm.recency, found.rfm.frequency, found.rfm.monetary, found.segment) == (5, 5, 5, "champions")
    assert found.recency_days == 3 and found.yearly_value_minor == round(2_000_000 / (730 / 365.25))


def test_a_big_spender_gone_quiet_is_one_not_to_lose() -> None:
    found = score(
        EDGES, now=NOW, first_purchase=NOW - timedelta(days=900), last_purchase=NOW - timedelta(days=400),
        purchases=6, value_minor=1_500_000,
    )  # fmt: skip
    assert (found.rfm.recency, found.segment) == (1, "cannot_lose")


def test_a_figure_at_a_cut_point_is_in_the_lower_fifth_and_a_new_buyers_year_is_a_month() -> None:
    found = score(
        EDGES, now=NOW, first_purchase=NOW, last_purchase=NOW - timedelta(days=30), purchases=1, value_minor=100_000
    )
    # 30 days is the second cut: the second-most-recent fifth; one purchase and 100,000 the lower fifths.
    assert (found.rfm.recency, found.rfm.frequency, found.rfm.monetary) == (4, 1, 2)
    assert found.yearly_value_minor == 1_200_000


def test_too_few_buyers_say_how_many() -> None:
    with pytest.raises(TooFewBuyers, match="3 buyers; customer value needs 20"):
        edges(3, [1, 2, 3, 4], [1, 1, 1, 1], [1, 2, 3, 4], "ILS")
