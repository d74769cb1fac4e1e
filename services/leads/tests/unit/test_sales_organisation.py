"""The sales organisation, pure: teams and reps as admins send them (validation, update masks,
etags), the rules that keep the directory consistent with routing, and what reps cover."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm_kit.errors import FailedPrecondition, InvalidArgument
from crm_leads.routing import availability, directory
from crm_leads.routing.domain import LeadFacts

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)


def fields_of(exc: pytest.ExceptionInfo[InvalidArgument]) -> dict[str, str]:
    return dict(exc.value.field_violations)


# ---------------------------------------------------------------- teams


def test_a_new_team_is_normalised() -> None:
    values = directory.new_team("team-north", directory.TeamInput(name="  צוות   צפון ", manager_id=""))

    assert values == {"id": "team-north", "name": "צוות צפון", "manager_id": None, "active": True}
    with_manager = directory.new_team("t", directory.TeamInput(name="North", manager_id=" auth0|42 "))
    assert with_manager["manager_id"] == "auth0|42"


def test_every_bad_team_field_is_named_at_once() -> None:
    with pytest.raises(InvalidArgument) as exc:
        directory.new_team("t", directory.TeamInput(name="   ", manager_id="two words"))

    assert set(fields_of(exc)) == {"team.name", "team.manager_id"}


def test_a_team_update_sets_only_the_masked_fields() -> None:
    team = directory.TeamInput(name="Renamed", manager_id="", active=False)

    assert directory.team_changes(["name"], team) == {"name": "Renamed"}
    assert directory.team_changes(["active", "manager_id"], team) == {"active": False, "manager_id": None}
    with pytest.raises(InvalidArgument) as exc:
        directory.team_changes(["name", "budget"], directory.TeamInput(name=""))
    assert set(fields_of(exc)) == {"team.name", "update_mask.paths[1]"}
    with pytest.raises(InvalidArgument) as empty:
        directory.team_changes([], team)
    assert set(fields_of(empty)) == {"update_mask"}


def test_a_team_is_deactivated_only_when_nothing_gives_it_work() -> None:
    directory.check_team_deactivation("t", [], [])

    with pytest.raises(FailedPrecondition) as reps:
        directory.check_team_deactivation("t", ["rep-a", "rep-b"], ["rule-1"])
    assert reps.value.reason == "TEAM_HAS_ACTIVE_REPS"
    assert reps.value.field_violations[0][0] == "team.active"
    assert "rep-a, rep-b" in reps.value.message
    with pytest.raises(FailedPrecondition) as rules:
        directory.check_team_deactivation("t", [], ["rule-1"])
    assert rules.value.reason == "TEAM_IN_ROUTING_RULES"
    assert rules.value.metadata["rule_ids"] == "rule-1"


# ---------------------------------------------------------------- reps


def test_a_new_rep_gets_the_default_time_zone_and_normalised_codes() -> None:
    rep = directory.RepInput(
        name="سارا  محمدی",
        team_id="team-digital",
        capacity=5,
        working_hours=(("sat", "08:00", "16:00"),),
        territories=("Tel  Aviv", "tel aviv", "חיפה"),
        product_lines=("Sofas",),
    )

    values = directory.new_rep("rep-sara-2", rep)

    assert values == {
        "id": "rep-sara-2",
        "name": "سارا محمدی",
        "team_id": "team-digital",
        "active": True,
        "away": False,
        "capacity": 5,
        "time_zone": "Asia/Jerusalem",
        "working_hours": [{"day": "sat", "start": "08:00", "end": "16:00"}],
        "territories": ["Tel Aviv", "חיפה"],
        "product_lines": ["Sofas"],
    }


def test_every_bad_rep_field_is_named_at_once() -> None:
    rep = directory.RepInput(
        name="",
        team_id=" ",
        capacity=-1,
        time_zone="Mars/Olympus",
        working_hours=(("mon", "17:00", "09:00"),),
        territories=("",),
        product_lines=("x" * 101,),
    )

    with pytest.raises(InvalidArgument) as exc:
        directory.new_rep("r", rep)

    assert set(fields_of(exc)) == {
        "rep.name",
        "rep.team_id",
        "rep.capacity",
        "rep.time_zone",
        "rep.working_hours[0].end",
        "rep.territories[0]",
        "rep.product_lines[0]",
    }


def test_a_rep_update_sets_only_the_masked_fields() -> None:
    rep = directory.RepInput(name="", team_id="", active=False, capacity=None, territories=("North",))

    assert directory.rep_changes(["active", "capacity", "territories"], rep) == {
        "active": False,
        "capacity": None,
        "territories": ["North"],
    }
    with pytest.raises(InvalidArgument) as exc:
        directory.rep_changes(["team_id", "salary"], rep)
    assert set(fields_of(exc)) == {"rep.team_id", "update_mask.paths[1]"}


def test_an_active_rep_needs_an_existing_active_team() -> None:
    directory.check_rep_team("t", directory.TeamState(exists=True, active=True), rep_active=True)
    directory.check_rep_team("t", directory.TeamState(exists=True, active=False), rep_active=False)

    with pytest.raises(InvalidArgument) as unknown:
        directory.check_rep_team("t", directory.TeamState(exists=False), rep_active=False)
    with pytest.raises(InvalidArgument) as inactive:
        directory.check_rep_team("t", directory.TeamState(exists=True, active=False), rep_active=True)
    assert fields_of(unknown) == {"rep.team_id": "unknown team"}
    assert "inactive" in fields_of(inactive)["rep.team_id"]


def test_a_rep_named_by_routing_rules_is_not_moved() -> None:
    directory.check_rep_move("rep-omid", "team-digital", [])

    with pytest.raises(FailedPrecondition) as exc:
        directory.check_rep_move("rep-omid", "team-digital", ["vip"])
    assert exc.value.reason == "REP_IN_ROUTING_RULES"


def test_ids_are_chosen_or_generated() -> None:
    assert directory.new_id("  rep-new ", "rep_id", lambda: "gen") == "rep-new"
    assert directory.new_id("", "rep_id", lambda: "gen") == "gen"
    with pytest.raises(InvalidArgument) as exc:
        directory.new_id("no spaces please", "rep_id", lambda: "gen")
    assert set(fields_of(exc)) == {"rep_id"}


def test_a_rep_covers_the_territories_and_product_lines_listed() -> None:
    north = availability.Candidate("north", territories=("Haifa", "צפון"), product_lines=("sofas",))
    lead = LeadFacts(source="radio", city="haifa ", product_line="Sofas")

    assert availability.coverage_gap(north, lead) == ""
    assert availability.coverage_gap(north, LeadFacts(source="radio", region="צפון")) == ""
    assert availability.coverage_gap(north, LeadFacts(source="radio", city="Eilat")).startswith("covers other terr")
    assert availability.coverage_gap(north, LeadFacts(source="radio", product_line="beds")).startswith(
        "covers other product lines"
    )
    # What the lead does not say narrows nothing; a rep with empty lists covers everything.
    assert availability.coverage_gap(north, LeadFacts(source="radio")) == ""
    assert availability.coverage_gap(availability.Candidate("any"), LeadFacts(source="radio", city="Eilat")) == ""
    # The reason is stored with every lead's explanation: a long list is named by its first three.
    many = availability.Candidate("many", territories=("Haifa", "Akko", "Nahariya", "Karmiel", "Tzfat"))
    assert availability.coverage_gap(many, LeadFacts(source="radio", city="Eilat")) == (
        "covers other territories (Haifa, Akko, Nahariya and 2 more)"
    )
    assert availability.coverage_gap(many, LeadFacts(source="radio", city="TZFAT")) == ""
    assert availability.coverage_gap(north, None) == ""


def test_screening_a_lead_skips_reps_who_do_not_cover_it_and_says_why() -> None:
    reps = [
        availability.Candidate("haifa", territories=("Haifa",)),
        availability.Candidate("tehran", territories=("Tehran",)),
        availability.Candidate("anyone"),
        availability.Candidate("gone", active=False, territories=("Tehran",)),
    ]
    lead = LeadFacts(source="radio", city="Tehran")

    eligible, considered = availability.screen(reps, NOW, lead=lead)

    assert [c.rep_id for c in eligible] == ["anyone", "tehran"]
    reasons = {c["rep_id"]: c["skipped"] for c in considered}
    assert reasons["haifa"] == "covers other territories (Haifa)"
    assert reasons["gone"] == "inactive"
    assert [c.rep_id for c in availability.screen(reps, NOW)[0]] == ["anyone", "haifa", "tehran"]
