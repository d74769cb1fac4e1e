"""Activity rules: which fields each kind takes, limits, what stops the speed-to-lead clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crm_kit.errors import InvalidArgument
from crm_leads.activities.domain import (
    ActivityKind,
    CallOutcome,
    summary,
    validate_new_activity,
)

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def fields_of(exc: pytest.ExceptionInfo[InvalidArgument]) -> set[str]:
    return {f for f, _ in exc.value.field_violations}


def test_a_call_takes_an_outcome_and_a_duration_and_defaults_to_now() -> None:
    new = validate_new_activity(
        kind=ActivityKind.CALL,
        subject="  שיחה   ראשונה ",
        body="",
        now=NOW,
        outcome=CallOutcome.VOICEMAIL,
        duration=timedelta(minutes=3),
    )
    assert new.occurred_at == NOW and new.subject == "שיחה ראשונה"
    assert new.stops_clock


@pytest.mark.parametrize(
    ("kind", "stops"),
    [
        (ActivityKind.CALL, True),
        (ActivityKind.EMAIL, True),
        (ActivityKind.SMS, True),
        (ActivityKind.MEETING, True),
        (ActivityKind.NOTE, False),
        (ActivityKind.TASK, False),
    ],
)
def test_only_reaching_out_stops_the_clock(kind: ActivityKind, stops: bool) -> None:
    extra: dict[str, object] = {
        ActivityKind.CALL: {"outcome": CallOutcome.NO_ANSWER},
        ActivityKind.MEETING: {"start_at": NOW, "end_at": NOW + timedelta(hours=1)},
        ActivityKind.TASK: {"due_at": NOW + timedelta(days=1)},
    }.get(kind, {})
    new = validate_new_activity(kind=kind, subject="נושא", body="گفتگو", now=NOW, **extra)  # type: ignore[arg-type]
    assert new.stops_clock is stops


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_new_activity(
            kind=ActivityKind.NOTE,
            subject="א" * 201,
            body="ב" * 10_001,
            now=NOW,
            occurred_at=NOW + timedelta(minutes=10),
            outcome=CallOutcome.BUSY,
            duration=timedelta(seconds=5),
            start_at=NOW,
            due_at=NOW,
            remind_at=NOW,
        )
    assert fields_of(exc) == {
        "subject",
        "body",
        "occur_time",
        "outcome",
        "duration",
        "start_time",
        "due_time",
        "remind_time",
    }


def test_clock_skew_is_tolerated_but_the_future_is_not() -> None:
    ok = validate_new_activity(
        kind=ActivityKind.SMS, subject="", body="x", now=NOW, occurred_at=NOW + timedelta(minutes=4)
    )
    assert ok.occurred_at == NOW + timedelta(minutes=4)
    with pytest.raises(InvalidArgument) as exc:
        validate_new_activity(
            kind=ActivityKind.SMS, subject="", body="x", now=NOW, occurred_at=NOW + timedelta(hours=1)
        )
    assert fields_of(exc) == {"occur_time"}


def test_kind_specific_requirements() -> None:
    with pytest.raises(InvalidArgument) as no_kind:
        validate_new_activity(kind=None, subject="", body="", now=NOW)
    assert fields_of(no_kind) == {"kind"}
    with pytest.raises(InvalidArgument) as call:
        validate_new_activity(kind=ActivityKind.CALL, subject="", body="", now=NOW, duration=timedelta(hours=25))
    assert fields_of(call) == {"outcome", "duration"}
    with pytest.raises(InvalidArgument) as meeting:
        validate_new_activity(kind=ActivityKind.MEETING, subject="", body="", now=NOW, start_at=NOW, end_at=NOW)
    assert fields_of(meeting) == {"end_time"}
    with pytest.raises(InvalidArgument) as task:
        validate_new_activity(
            kind=ActivityKind.TASK, subject="", body="", now=NOW, due_at=NOW, remind_at=NOW + timedelta(minutes=1)
        )
    assert fields_of(task) == {"subject", "remind_time"}
    with pytest.raises(InvalidArgument) as note:
        validate_new_activity(kind=ActivityKind.NOTE, subject=" ", body="  ", now=NOW)
    assert fields_of(note) == {"body"}


def test_summary_is_the_subject_else_the_start_of_the_body() -> None:
    assert summary("call", "שיחה", "גוף") == "שיחה"
    assert summary("note", "", "  تماس   گرفتم \n فردا ") == "تماس گرفتم فردا"
    long = summary("note", "", "א" * 500)
    assert len(long) == 200 and long.endswith("…")
