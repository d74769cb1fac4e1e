"""Routing rules, pure: matching, availability in the reps' time zones, picking, validation."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from crm_kit.errors import AlreadyExists, InvalidArgument
from crm_leads.routing import availability
from crm_leads.routing import domain as routing_domain
from crm_leads.routing.domain import BreachAction, RoutingRule, Strategy

pytestmark = pytest.mark.unit

ISRAELI_WEEK = tuple(availability.WorkingHours(d, "09:00", "17:00") for d in ("sun", "mon", "tue", "wed", "thu"))
IRANIAN_WEEK = tuple(availability.WorkingHours(d, "08:00", "16:00") for d in ("sat", "sun", "mon", "tue", "wed"))


def rule(rule_id: str, priority: int, **kw: object) -> RoutingRule:
    return RoutingRule(
        id=rule_id, team_id=str(kw.pop("team_id", "t")), sources=tuple(kw.pop("sources", ())), priority=priority, **kw
    )  # type: ignore[arg-type]


def test_every_criterion_must_hold_and_an_empty_one_matches_anything() -> None:
    lead = routing_domain.LeadFacts(
        source="radio", campaign_id="c-1", product_line="Sofas", city="חיפה", region="North", locale="he-IL"
    )
    assert routing_domain.rule_matches(rule("any", 1), lead)
    assert routing_domain.rule_matches(rule("src", 1, sources=("tv", "radio")), lead)
    assert not routing_domain.rule_matches(rule("src", 1, sources=("tv",)), lead)
    assert routing_domain.rule_matches(rule("c", 1, campaign_ids=("c-1",)), lead)
    assert not routing_domain.rule_matches(rule("c", 1, campaign_ids=("c-2",)), lead)
    assert routing_domain.rule_matches(rule("p", 1, product_lines=("  sofas ",)), lead)
    assert not routing_domain.rule_matches(rule("p", 1, product_lines=("tables",)), lead)
    assert routing_domain.rule_matches(rule("city", 1, territories=("חיפה",)), lead)
    assert routing_domain.rule_matches(rule("region", 1, territories=("north",)), lead)
    assert not routing_domain.rule_matches(rule("t", 1, territories=("תל אביב",)), lead)
    assert routing_domain.rule_matches(rule("he", 1, languages=("he",)), lead)
    assert not routing_domain.rule_matches(rule("fa", 1, languages=("fa",)), lead)
    assert not routing_domain.rule_matches(rule("both", 1, sources=("radio",), languages=("fa",)), lead)


def test_a_lead_without_territory_never_matches_a_territory_rule() -> None:
    assert not routing_domain.rule_matches(
        rule("t", 1, territories=("north",)), routing_domain.LeadFacts(source="radio")
    )


def test_matching_rules_come_in_priority_order() -> None:
    rules = [rule("catch-all", 1000), rule("persian", 5, languages=("fa",)), rule("radio", 10, sources=("radio",))]
    lead = routing_domain.LeadFacts(source="radio", locale="fa-IR")
    assert [r.id for r in routing_domain.matching_rules(rules, lead)] == ["persian", "radio", "catch-all"]
    assert [
        r.id for r in routing_domain.matching_rules(rules, routing_domain.LeadFacts(source="tv", locale="he-IL"))
    ] == ["catch-all"]


def test_language_is_the_locales_primary_subtag() -> None:
    assert routing_domain.language_of("fa-IR") == "fa"
    assert routing_domain.language_of("EN-us") == "en"
    assert routing_domain.language_of("") == ""


@pytest.mark.parametrize(
    ("utc", "on_duty"),
    [
        # Sunday 07:00 UTC = 09:00 in Jerusalem in winter (UTC+2): the Israeli week starts.
        (datetime(2026, 1, 4, 7, 0, tzinfo=UTC), True),
        (datetime(2026, 1, 4, 6, 59, tzinfo=UTC), False),
        # Thursday 14:59 UTC = 16:59 local: still on; Friday and Saturday off.
        (datetime(2026, 1, 8, 14, 59, tzinfo=UTC), True),
        (datetime(2026, 1, 8, 15, 0, tzinfo=UTC), False),
        (datetime(2026, 1, 9, 9, 0, tzinfo=UTC), False),
        (datetime(2026, 1, 10, 9, 0, tzinfo=UTC), False),
        # Summer time (UTC+3): Sunday 06:00 UTC is 09:00 local.
        (datetime(2026, 7, 5, 6, 0, tzinfo=UTC), True),
        (datetime(2026, 7, 5, 5, 59, tzinfo=UTC), False),
    ],
)
def test_israeli_hours_are_sunday_to_thursday_in_jerusalem_time(utc: datetime, on_duty: bool) -> None:
    rep = availability.Candidate("rep-dana", time_zone="Asia/Jerusalem", working_hours=ISRAELI_WEEK)
    assert availability.on_duty(rep, utc) is on_duty


@pytest.mark.parametrize(
    ("utc", "on_duty"),
    [
        # Saturday 04:30 UTC = 08:00 in Tehran (UTC+3:30): the Iranian week starts on Saturday.
        (datetime(2026, 1, 3, 4, 30, tzinfo=UTC), True),
        (datetime(2026, 1, 3, 4, 29, tzinfo=UTC), False),
        # Wednesday 12:29 UTC = 15:59 local: on; Thursday and Friday off.
        (datetime(2026, 1, 7, 12, 29, tzinfo=UTC), True),
        (datetime(2026, 1, 8, 6, 0, tzinfo=UTC), False),
        (datetime(2026, 1, 9, 6, 0, tzinfo=UTC), False),
        # Saturday 23:00 UTC is already Sunday 02:30 in Tehran: off, though Saturday in UTC.
        (datetime(2026, 1, 3, 23, 0, tzinfo=UTC), False),
    ],
)
def test_iranian_hours_are_saturday_to_wednesday_in_tehran_time(utc: datetime, on_duty: bool) -> None:
    rep = availability.Candidate("rep-omid", time_zone="Asia/Tehran", working_hours=IRANIAN_WEEK)
    assert availability.on_duty(rep, utc) is on_duty


def test_a_span_to_midnight_and_no_hours_at_all() -> None:
    late = availability.Candidate(
        "r", time_zone="UTC", working_hours=(availability.WorkingHours("mon", "20:00", "24:00"),)
    )
    assert availability.on_duty(late, datetime(2026, 1, 5, 23, 59, 59, tzinfo=UTC))
    assert not availability.on_duty(late, datetime(2026, 1, 6, 0, 0, tzinfo=UTC))
    assert availability.on_duty(availability.Candidate("always"), datetime(2026, 1, 10, 3, 0, tzinfo=UTC))


def test_skip_reasons_explain_who_cannot_take_a_lead() -> None:
    now = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)  # a Saturday: the Israeli week is off
    reps = [
        availability.Candidate("a"),
        availability.Candidate("b", away=True),
        availability.Candidate("c", capacity=2, open_leads=2),
        availability.Candidate("d", capacity=3, open_leads=2),
        availability.Candidate("e", working_hours=ISRAELI_WEEK),
        availability.Candidate("f", active=False),
        availability.Candidate("g"),
    ]
    eligible, considered = availability.screen(reps, now, tried=("g",))
    assert [c.rep_id for c in eligible] == ["a", "d"]
    reasons = {c["rep_id"]: c["skipped"] for c in considered}
    assert reasons["b"] == "away"
    assert reasons["c"] == "at capacity (2/2 open leads)"
    assert reasons["e"] == "outside working hours (Asia/Jerusalem)"
    assert reasons["f"] == "inactive"
    assert reasons["g"] == "already tried for this lead"
    assert reasons["a"] == reasons["d"] == ""


def test_round_robin_is_even_over_the_eligible_reps() -> None:
    reps = [availability.Candidate("c"), availability.Candidate("a"), availability.Candidate("b")]
    picks = Counter(availability.pick(Strategy.ROUND_ROBIN, reps, turn).rep_id for turn in range(1, 301))
    assert picks == {"a": 100, "b": 100, "c": 100}
    assert [availability.pick(Strategy.ROUND_ROBIN, reps, t).rep_id for t in (1, 2, 3, 4)] == ["a", "b", "c", "a"]


def test_least_loaded_takes_the_fewest_open_leads_and_rotates_ties() -> None:
    reps = [
        availability.Candidate("a", open_leads=3),
        availability.Candidate("b", open_leads=1),
        availability.Candidate("c", open_leads=1),
    ]
    assert {availability.pick(Strategy.LEAST_LOADED, reps, t).rep_id for t in range(1, 5)} == {"b", "c"}
    assert (
        availability.pick(Strategy.LEAST_LOADED, [availability.Candidate("a", open_leads=0), *reps[1:]], 7).rep_id
        == "a"
    )
    with pytest.raises(ValueError):
        availability.pick(Strategy.ROUND_ROBIN, [], 1)


KNOWN = {
    "sources": {"radio", "tv", "website"},
    "teams": {"team-media", "team-digital"},
    "rep_teams": {"rep-dana": "team-media", "rep-sara": "team-digital"},
    "campaigns": {"camp-1"},
}


def validate(rules: list[routing_domain.RuleInput]) -> list[RoutingRule]:
    ids = iter(range(1, 100))
    return routing_domain.validate_rule_set(rules, new_id=lambda: f"gen-{next(ids)}", **KNOWN)  # type: ignore[arg-type]


def test_a_valid_rule_set_is_normalized() -> None:
    [named, pooled] = validate(
        [
            routing_domain.RuleInput("", "VIP  Dana", 1, strategy="named_rep", rep_id="rep-dana", sla_seconds=300),
            routing_domain.RuleInput(
                "web",
                "Web",
                2,
                sources=("website", "website"),
                campaign_ids=("camp-1",),
                languages=("fa",),
                strategy="least_loaded",
                team_id="team-digital",
                breach_action="reassign",
            ),
        ]
    )
    assert named.id == "gen-1" and named.name == "VIP Dana" and named.team_id == "team-media"
    assert named.strategy is Strategy.NAMED_REP and named.sla_seconds == 300
    assert named.breach_action is BreachAction.ESCALATE
    assert pooled.sources == ("website",) and pooled.strategy is Strategy.LEAST_LOADED
    assert pooled.breach_action is BreachAction.REASSIGN and pooled.sla_seconds is None


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(InvalidArgument) as err:
        validate(
            [
                routing_domain.RuleInput("ok", "ok", 1, team_id="team-media"),
                routing_domain.RuleInput("x", "", 2, sources=("tiktok",), team_id="team-nope", sla_seconds=0),
                routing_domain.RuleInput("y", "y", 3, strategy="random", languages=("ar",), campaign_ids=("camp-9",)),
                routing_domain.RuleInput("z", "z", 4, strategy="named_rep", rep_id="rep-sara", team_id="team-media"),
                routing_domain.RuleInput(
                    "ok", "dup", 5, team_id="team-media", rep_id="rep-dana", breach_action="ignore"
                ),
            ]
        )
    fields = {f for f, _ in err.value.field_violations}
    assert fields == {
        "rules[1].name",
        "rules[1].sources[0]",
        "rules[1].team_id",
        "rules[1].sla_seconds",
        "rules[2].strategy",
        "rules[2].languages[0]",
        "rules[2].campaign_ids[0]",
        "rules[3].team_id",
        "rules[4].id",
        "rules[4].rep_id",
        "rules[4].breach_action",
    }


def test_two_rules_with_one_priority_conflict() -> None:
    with pytest.raises(AlreadyExists) as err:
        validate(
            [
                routing_domain.RuleInput("a", "a", 10, team_id="team-media"),
                routing_domain.RuleInput("b", "b", 10, team_id="team-media"),
            ]
        )
    assert err.value.reason == "RULE_PRIORITY_CONFLICT"


def test_no_campaign_catalogue_means_campaign_ids_are_not_checked() -> None:
    [r] = routing_domain.validate_rule_set(
        [routing_domain.RuleInput("a", "a", 1, team_id="t", campaign_ids=("anything",))],
        sources=set(),
        teams={"t"},
        rep_teams={},
        campaigns=None,
        new_id=lambda: "x",
    )
    assert r.campaign_ids == ("anything",)


def test_working_hours_validation() -> None:
    hours = availability.validate_working_hours([("Sunday", "09:00", "17:00"), ("sat", "20:00", "24:00")])
    assert [h.day for h in hours] == ["sun", "sat"]
    with pytest.raises(InvalidArgument) as err:
        availability.validate_working_hours(
            [("xyz", "9:00", "17:00"), ("mon", "18:00", "09:00"), ("tue", "24:00", "24:00")]
        )
    assert {f for f, _ in err.value.field_violations} == {
        "working_hours[0].day",
        "working_hours[0].start",
        "working_hours[1].end",
        "working_hours[2].start",
    }


def test_time_zones_must_be_iana_names() -> None:
    assert availability.validate_time_zone("Asia/Tehran")
    assert availability.validate_time_zone("Asia/Jerusalem")
    assert not availability.validate_time_zone("Mars/Olympus")
    assert not availability.validate_time_zone("../../etc/passwd")
    assert not availability.validate_time_zone("")
