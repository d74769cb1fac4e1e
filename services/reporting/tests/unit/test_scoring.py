"""RFM segments and explainable lead scores: the segment table read in order, scores outside 1–5
refused, NTILE's buckets, and naive Bayes whose probability follows the counts and whose reasons
name the field that moved it most."""

from __future__ import annotations

import pytest

from crm_reporting.scoring import FieldCounts, Rfm, quintile, score_lead, segment

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("scores", "name"),
    [
        ((5, 5, 5), "champions"),
        ((4, 5, 4), "loyal"),
        ((1, 5, 5), "cannot_lose"),
        ((2, 4, 3), "at_risk"),
        ((5, 3, 2), "potential_loyalist"),
        ((5, 1, 1), "new"),
        ((4, 1, 2), "promising"),
        ((3, 3, 3), "needs_attention"),
        ((3, 1, 2), "about_to_sleep"),
        ((2, 2, 2), "hibernating"),
        ((1, 1, 1), "lost"),
    ],
)
def test_the_segment_table_names_every_corner(scores: tuple[int, int, int], name: str) -> None:
    assert segment(*scores) == name
    assert Rfm(*scores).segment == name


def test_scores_outside_one_to_five_are_refused() -> None:
    with pytest.raises(ValueError, match="1 to 5"):
        segment(0, 3, 3)


def test_quintiles_are_ntile_buckets() -> None:
    assert [quintile(r, 10) for r in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [quintile(r, 7) for r in range(1, 8)] == [1, 1, 2, 2, 3, 4, 5]  # the first buckets take the extra
    with pytest.raises(ValueError):
        quintile(0, 5)


def test_a_lead_score_follows_the_counts_and_names_its_strongest_reason() -> None:
    counts = {
        "source": {"referral": FieldCounts(won=40, lost=10), "radio": FieldCounts(won=10, lost=90)},
        "city": {"חיפה": FieldCounts(won=25, lost=50), "תל אביב": FieldCounts(won=25, lost=50)},
    }
    referral = score_lead({"source": "referral", "city": "חיפה"}, counts, won=50, lost=100)
    radio = score_lead({"source": "radio", "city": "חיפה"}, counts, won=50, lost=100)
    unknown = score_lead({"source": "tiktok"}, counts, won=50, lost=100)
    assert referral.probability > 0.5 > radio.probability
    assert referral.reasons[0][0] == "source" and referral.reasons[0][2] > 1 > radio.reasons[0][2]
    assert dict((n, r) for n, _, r in referral.reasons)["city"] == pytest.approx(1.0, abs=0.05)  # says nothing
    assert unknown.probability == pytest.approx(1 / 3, abs=0.01)  # an unseen value: about the prior
    with pytest.raises(ValueError, match="both outcomes"):
        score_lead({"source": "radio"}, counts, won=0, lost=10)
