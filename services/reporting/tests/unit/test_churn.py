"""At-risk rules: each signal scores its points with its figure as the reason, largest first; a
customer who never bought has no risk; bands at 0.3 and 0.6; a list's control group is drawn at
random but repeatably, and the callers are the owners, else reps in turn."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crm_reporting.churn import Band, Candidate, Signals, band, rule_risk, split, suggested_offer

pytestmark = pytest.mark.unit

LOYAL = Signals(
    days_since_purchase=20,
    purchases_recent=3,
    purchase_rate_before=3.0,
    amount_recent=300000,
    amount_rate_before=280000.0,
    complaints_recent=0,
    breached_recent=0,
    opted_out=False,
    days_since_contact=5,
    lost_recent=0,
)


def test_a_loyal_customer_has_no_reason_to_worry() -> None:
    found = rule_risk(LOYAL)
    assert found is not None and (found.risk, found.band, found.reasons) == (0.0, Band.LOW, ())


def test_a_customer_who_never_bought_has_no_risk() -> None:
    assert rule_risk(replace(LOYAL, days_since_purchase=None)) is None


def test_every_signal_scores_and_the_largest_reason_comes_first() -> None:
    leaving = replace(
        LOYAL,
        days_since_purchase=400,
        purchases_recent=0,
        amount_recent=0,
        complaints_recent=3,
        breached_recent=1,
        opted_out=True,
        days_since_contact=120,
        lost_recent=1,
    )
    found = rule_risk(leaving)
    assert found is not None and found.risk == 1.0 and found.band == Band.HIGH
    assert [(r.signal, r.points, r.value) for r in found.reasons] == [
        ("no_purchase", 35, 400),
        ("complaints", 25, 3),
        ("fewer_purchases", 20, 0),
        ("lost_deals", 10, 1),
        ("no_contact", 10, 120),
        ("opted_out", 10, 1),
        ("sla_breaches", 10, 1),
        ("smaller_purchases", 10, 0),
    ]


def test_a_half_year_of_silence_and_one_complaint_is_medium() -> None:
    found = rule_risk(replace(LOYAL, days_since_purchase=200, purchases_recent=0, complaints_recent=1))
    assert found is not None
    # 20 (no purchase for 180+ days) + 20 (fewer purchases) + 15 (a complaint); as much spent
    assert found.risk == pytest.approx(0.55) and found.band == Band.MEDIUM


@pytest.mark.parametrize(
    ("risk", "expected"), [(0.0, Band.LOW), (0.29, Band.LOW), (0.3, Band.MEDIUM), (0.6, Band.HIGH)]
)
def test_bands(risk: float, expected: Band) -> None:
    assert band(risk) == expected


def test_the_offer_follows_the_reasons() -> None:
    complaint = rule_risk(replace(LOYAL, complaints_recent=1))
    silent = rule_risk(replace(LOYAL, days_since_purchase=300))
    assert complaint is not None and silent is not None
    assert suggested_offer(complaint.reasons, "RUG") == "service_recovery"
    assert suggested_offer(silent.reasons, "RUG") == "cross_sell:RUG"
    assert suggested_offer(silent.reasons) == "win_back_discount"
    assert suggested_offer(()) == "loyalty_check_in"


def test_the_control_group_is_random_repeatable_and_callers_are_owners_else_in_turn() -> None:
    candidates = [Candidate(f"c{i}", "rep-a" if i % 3 == 0 else "gone", 0.9 - i / 100) for i in range(20)]
    first = split(candidates, control_share=0.2, reps=["rep-b", "rep-a"], seed="list-1")
    assert first == split(candidates, control_share=0.2, reps=["rep-a", "rep-b"], seed="list-1")
    assert [e.customer_id for e in first] == [c.customer_id for c in candidates]  # highest risk first
    control = [e for e in first if e.control]
    assert len(control) == 4 and all(e.rep_id == "" for e in control)
    called = [(c, e) for c, e in zip(candidates, first, strict=True) if not e.control]
    assert all(e.rep_id == "rep-a" for c, e in called if c.owner_rep_id == "rep-a")
    others = [e.rep_id for c, e in called if c.owner_rep_id != "rep-a"]
    assert others == ["rep-a", "rep-b"] * (len(others) // 2) + ["rep-a"] * (len(others) % 2)
    other_draw = split(candidates, control_share=0.2, reps=["rep-a"], seed="list-2")
    assert {e.customer_id for e in other_draw if e.control} != {e.customer_id for e in control}


def test_a_small_list_still_holds_one_out_and_no_reps_leaves_entries_unassigned() -> None:
    two = [Candidate("c1", "", 0.9), Candidate("c2", "", 0.8)]
    entries = split(two, control_share=0.1, reps=[], seed="s")
    assert sum(e.control for e in entries) == 1 and all(e.rep_id == "" for e in entries)
    assert not any(e.control for e in split(two, control_share=0.0, reps=["r"], seed="s"))


def test_band_changes_keep_the_new_and_changed_and_warn_of_all_but_a_first_low() -> None:
    from crm_reporting.churn import Risk, band_changes

    low, medium, high = Risk(0.1, Band.LOW, ()), Risk(0.45, Band.MEDIUM, ()), Risk(0.7, Band.HIGH, ())
    keep, changes = band_changes(
        {"same": "medium", "rising": "low", "falling": "high"},
        [("same", medium), ("rising", high), ("falling", low), ("new-low", low), ("new-high", high)],
    )
    assert keep == [
        ("rising", "high", 0.7),
        ("falling", "low", 0.1),
        ("new-low", "low", 0.1),
        ("new-high", "high", 0.7),
    ]
    assert [(c.customer_id, c.band.value, c.previous) for c in changes] == [
        ("rising", "high", "low"),
        ("falling", "low", "high"),
        ("new-high", "high", ""),
    ]
