"""Activity rules: kinds, call outcomes, which fields each kind takes, what stops the clock.
Pure, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from crm_kit.errors import InvalidArgument

SUBJECT_MAX = 200
BODY_MAX = 10_000
SUMMARY_MAX = 200
# A client clock a little ahead of ours is not "the future".
FUTURE_SKEW = timedelta(minutes=5)
MAX_CALL = timedelta(hours=24)
MAX_MEETING = timedelta(hours=24)
# Times outside these are typos (or fuzzing), not activities; they also keep date arithmetic safe.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class ActivityKind(StrEnum):
    CALL = "call"
    MEETING = "meeting"
    NOTE = "note"
    TASK = "task"
    EMAIL = "email"
    SMS = "sms"


class CallOutcome(StrEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    WRONG_NUMBER = "wrong_number"
    CALLBACK_REQUESTED = "callback_requested"


# A reach-out to the person stops the speed-to-lead clock; a note or a task is the rep's own
# bookkeeping. An unanswered call counts: the rep did respond, the lead did not pick up.
RESPONSE_KINDS = frozenset({ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.SMS, ActivityKind.MEETING})


@dataclass(frozen=True)
class NewActivity:
    kind: ActivityKind
    subject: str
    body: str
    occurred_at: datetime
    outcome: CallOutcome | None = None
    duration: timedelta | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    due_at: datetime | None = None
    remind_at: datetime | None = None

    @property
    def stops_clock(self) -> bool:
        return self.kind in RESPONSE_KINDS


def validate_new_activity(
    *,
    kind: ActivityKind | None,
    subject: str,
    body: str,
    now: datetime,
    occurred_at: datetime | None = None,
    outcome: CallOutcome | None = None,
    duration: timedelta | None = None,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    due_at: datetime | None = None,
    remind_at: datetime | None = None,
) -> NewActivity:
    """Check every field against the kind and report every bad one at once (InvalidArgument)."""
    # The fields as they would be stored; a missing kind is reported below (nothing is returned).
    new = NewActivity(
        kind=kind or ActivityKind.NOTE,
        subject=" ".join(subject.split()),
        body=body.strip(),
        occurred_at=occurred_at or now,
        outcome=outcome,
        duration=duration,
        start_at=start_at,
        end_at=end_at,
        due_at=due_at,
        remind_at=remind_at,
    )
    bad: list[tuple[str, str]] = []
    if kind is None:
        bad.append(("kind", f"must be one of: {', '.join(k.value for k in ActivityKind)}"))
    if len(new.subject) > SUBJECT_MAX:
        bad.append(("subject", f"at most {SUBJECT_MAX} characters"))
    if len(new.body) > BODY_MAX:
        bad.append(("body", f"at most {BODY_MAX} characters"))
    out_of_range = _out_of_range(occurred_at, new)
    bad.extend((name, "between the years 2000 and 2099") for name in out_of_range)
    if out_of_range:
        # Nothing below compares or adds to a time that is out of range.
        raise InvalidArgument("invalid activity: " + ", ".join(f for f, _ in bad), field_violations=bad)
    if new.occurred_at > now + FUTURE_SKEW:
        bad.append(("occur_time", "must not be in the future"))
    _only_for(bad, kind, ActivityKind.CALL, ("outcome", outcome), ("duration", duration))
    _only_for(bad, kind, ActivityKind.MEETING, ("start_time", start_at), ("end_time", end_at))
    _only_for(bad, kind, ActivityKind.TASK, ("due_time", due_at), ("remind_time", remind_at))
    if kind is not None:
        bad.extend(_KIND_CHECKS[kind](new))
    if bad:
        raise InvalidArgument("invalid activity: " + ", ".join(f for f, _ in bad), field_violations=bad)
    return new


def _out_of_range(occurred_at: datetime | None, new: NewActivity) -> list[str]:
    """The request's time fields outside the years 2000–2099, by name."""
    times = {
        "occur_time": occurred_at,
        "start_time": new.start_at,
        "end_time": new.end_at,
        "due_time": new.due_at,
        "remind_time": new.remind_at,
    }
    return sorted(name for name, value in times.items() if value is not None and not EARLIEST <= value < LATEST)


def _call_violations(new: NewActivity) -> list[tuple[str, str]]:
    bad: list[tuple[str, str]] = []
    if new.outcome is None:
        bad.append(("outcome", f"a call needs one of: {', '.join(o.value for o in CallOutcome)}"))
    if new.duration is not None and not timedelta(0) <= new.duration <= MAX_CALL:
        bad.append(("duration", "between 0 and 24 hours"))
    return bad


def _meeting_violations(new: NewActivity) -> list[tuple[str, str]]:
    bad: list[tuple[str, str]] = []
    if new.start_at is None:
        bad.append(("start_time", "a meeting needs its start time"))
    if new.end_at is None:
        bad.append(("end_time", "a meeting needs its end time"))
    if (
        new.start_at is not None
        and new.end_at is not None
        and not new.start_at < new.end_at <= new.start_at + MAX_MEETING
    ):
        bad.append(("end_time", "after start_time, at most 24 hours later"))
    return bad


def _task_violations(new: NewActivity) -> list[tuple[str, str]]:
    bad: list[tuple[str, str]] = []
    if not new.subject:
        bad.append(("subject", "a task needs a subject"))
    if new.due_at is None:
        bad.append(("due_time", "a task needs a due time"))
    if new.due_at is not None and new.remind_at is not None and new.remind_at > new.due_at:
        bad.append(("remind_time", "must not be after due_time"))
    return bad


def _note_violations(new: NewActivity) -> list[tuple[str, str]]:
    if not new.body and not new.subject:
        return [("body", "a note needs a body or a subject")]
    return []


def _no_violations(new: NewActivity) -> list[tuple[str, str]]:
    return []


# What each kind requires of its own fields (fields of other kinds are refused by _only_for).
_KIND_CHECKS: dict[ActivityKind, Callable[[NewActivity], list[tuple[str, str]]]] = {
    ActivityKind.CALL: _call_violations,
    ActivityKind.MEETING: _meeting_violations,
    ActivityKind.TASK: _task_violations,
    ActivityKind.NOTE: _note_violations,
    ActivityKind.EMAIL: _no_violations,
    ActivityKind.SMS: _no_violations,
}


def _only_for(
    bad: list[tuple[str, str]],
    kind: ActivityKind | None,
    allowed: ActivityKind,
    *fields: tuple[str, object | None],
) -> None:
    if kind is None or kind is allowed:
        return
    bad.extend((name, f"only a {allowed.value} takes {name}") for name, value in fields if value is not None)


def summary(kind: str, subject: str, body: str) -> str:
    """What a list or timeline shows of an activity: the subject, else the body's start."""
    text = subject.strip() or " ".join(body.split())
    if len(text) <= SUMMARY_MAX:
        return text
    return text[: SUMMARY_MAX - 1].rstrip() + "…"
