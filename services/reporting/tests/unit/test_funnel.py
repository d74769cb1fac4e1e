"""The funnel and the speed-to-lead curve: every band in order (empty ones as zeros) with its win
rate among decided leads; a deal counts in every stage up to the furthest it reached, so a stage is
never above the one before; a wrong request names its field."""

from __future__ import annotations

import pytest

from crm_kit.errors import InvalidArgument
from crm_reporting.funnel import check_funnel, funnel, speed_bands

pytestmark = pytest.mark.unit


def test_every_band_in_order_with_its_win_rate() -> None:
    bands = speed_bands({0: (10, 6, 2, 120.0), 4: (5, 1, 3, 200000.0), -1: (4, 0, 0, 0.0)})
    assert [b.band for b in bands] == [
        "under_5_minutes",
        "5_to_30_minutes",
        "30_minutes_to_2_hours",
        "2_to_24_hours",
        "over_a_day",
        "no_response",
    ]
    assert (bands[0].leads, bands[0].win_rate) == (10, 0.75)
    assert (bands[1].leads, bands[1].win_rate) == (0, None)
    assert bands[4].win_rate == 0.25 and bands[5].win_rate is None


def test_a_deal_counts_in_every_stage_up_to_its_furthest() -> None:
    rows, total = funnel([("radio", 1, 4), ("radio", 3, 2), ("web", 4, 1), ("web", 2, 3)], 4)
    assert [(r.group, r.reached) for r in rows] == [("radio", (6, 2, 2, 0)), ("web", (4, 4, 1, 1))]
    assert total.reached == (10, 6, 3, 1)
    # A deal that entered no listed stage (or only the lost one) is in the first.
    assert funnel([("", 0, 2)], 3)[1].reached == (2, 0, 0)


def test_a_wrong_funnel_request_names_its_field() -> None:
    with pytest.raises(InvalidArgument) as error:
        check_funnel([], "city")
    assert {f for f, _ in error.value.field_violations} == {"stage_ids", "dimension"}
    with pytest.raises(InvalidArgument):
        check_funnel(["a", "a"], "")
