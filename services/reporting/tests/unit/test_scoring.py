"""RFM segments and explainable lead scores: the segment table read in order, scores outside 1–5
refused, NTILE's buckets, and naive Bayes whose probability follows the counts and whose reasons
name the field that moved it most."""

from __future__ import annotations

import pytest

from crm_reporting.scoring import (
    DecidedLead,
    FieldCounts,
    Rfm,
    TooLittleHistory,
    auc,
    quintile,
    score_lead,
    segment,
    train,
)

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


def test_auc_is_the_chance_a_converted_lead_scores_above_one_that_did_not() -> None:
    assert auc([(0.9, True), (0.2, False), (0.8, True), (0.1, False)]) == 1.0
    assert auc([(0.1, True), (0.9, False)]) == 0.0
    assert auc([(0.5, True), (0.5, False)]) == 0.5  # a tie counts half
    assert auc([(0.9, True), (0.3, False), (0.5, False), (0.4, True)]) == 0.75
    assert auc([(0.9, True)]) is None and auc([]) is None


def _decided(source: str, won: bool, at: float, product_line: str = "sofas") -> DecidedLead:
    return DecidedLead({"source": source, "campaign": "", "product_line": product_line}, won, at)


def test_a_model_trained_on_decided_leads_scores_a_new_one_and_reports_its_time_split_holdout() -> None:
    # Radio leads mostly convert, web leads mostly do not, interleaved in time.
    leads = []
    for i in range(50):
        leads.append(_decided("radio", i % 5 != 0, at=2 * i))
        leads.append(_decided("web", i % 5 == 0, at=2 * i + 1))
    model = train(leads)
    assert (model.won, model.lost, model.holdout_leads) == (50, 50, 20)
    radio, web = model.score({"source": "radio", "product_line": "sofas"}), model.score({"source": "web"})
    assert radio.probability > 0.75 > 0.25 > web.probability
    assert radio.reasons[0][:2] == ("source", "radio") and radio.reasons[0][2] > 1
    # The held-out latest 20 % were scored by a model of the earlier 80 %: it ranks them well.
    assert model.holdout_auc is not None and model.holdout_auc > 0.7
    # A value never seen says nothing: the odds stay the base rate's.
    assert model.score({"source": "tv"}).probability == pytest.approx(0.5, abs=0.01)


def test_too_little_history_is_a_clear_status_with_the_counts() -> None:
    few = [_decided("radio", True, at=i) for i in range(30)] + [_decided("web", False, at=100 + i) for i in range(19)]
    with pytest.raises(TooLittleHistory) as refused:
        train(few)
    assert (refused.value.won, refused.value.lost) == (30, 19) and "20 won and 20 lost" in str(refused.value)
