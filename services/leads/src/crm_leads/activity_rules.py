"""Activity rules: kinds, call outcomes, which fields each kind takes, what stops the clock.
Pure, no I/O."""

from __future__ import annotations

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
    bad: list[tuple[str, str]] = []
    subject = " ".join(subject.split())
    body = body.strip()
    if kind is None:
        bad.append(("kind", f"must be one of: {', '.join(k.value for k in ActivityKind)}"))
    if len(subject) > SUBJECT_MAX:
        bad.append(("subject", f"at most {SUBJECT_MAX} characters"))
    if len(body) > BODY_MAX:
        bad.append(("body", f"at most {BODY_MAX} characters"))
    times = {
        "occur_time": occurred_at,
        "start_time": start_at,
        "end_time": end_at,
        "due_time": due_at,
        "remind_time": remind_at,
    }
    out_of_range = {name for name, value in times.items() if value is not None and not EARLIEST <= value < LATEST}
    bad.extend((name, "between the years 2000 and 2099") for name in sorted(out_of_range))
    if out_of_range:
        # Nothing below compares or adds to a time that is out of range.
        raise InvalidArgument("invalid activity: " + ", ".join(f for f, _ in bad), field_violations=bad)
    when = occurred_at or now
    if when > now + FUTURE_SKEW:
        bad.append(("occur_time", "must not be in the future"))
    _only_for(bad, kind, ActivityKind.CALL, ("outcome", outcome), ("duration", duration))
    _only_for(bad, kind, ActivityKind.MEETING, ("start_time", start_at), ("end_time", end_at))
    _only_for(bad, kind, ActivityKind.TASK, ("due_time", due_at), ("remind_time", remind_at))
    if kind is ActivityKind.CALL:
        if outcome is None:
            bad.append(("outcome", f"a call needs one of: {', '.join(o.value for o in CallOutcome)}"))
        if duration is not None and not timedelta(0) <= duration <= MAX_CALL:
            bad.append(("duration", "between 0 and 24 hours"))
    elif kind is ActivityKind.MEETING:
        if start_at is None:
            bad.append(("start_time", "a meeting needs its start time"))
        if end_at is None:
            bad.append(("end_time", "a meeting needs its end time"))
        if start_at is not None and end_at is not None and not start_at < end_at <= start_at + MAX_MEETING:
            bad.append(("end_time", "after start_time, at most 24 hours later"))
    elif kind is ActivityKind.TASK:
        if not subject:
            bad.append(("subject", "a task needs a subject"))
        if due_at is None:
            bad.append(("due_time", "a task needs a due time"))
        if due_at is not None and remind_at is not None and remind_at > due_at:
            bad.append(("remind_time", "must not be after due_time"))
    elif kind is ActivityKind.NOTE and not body and not subject:
        bad.append(("body", "a note needs a body or a subject"))
    if bad:
        raise InvalidArgument("invalid activity: " + ", ".join(f for f, _ in bad), field_violations=bad)
    assert kind is not None
    return NewActivity(
        kind=kind,
        subject=subject,
        body=body,
        occurred_at=when,
        outcome=outcome,
        duration=duration,
        start_at=start_at,
        end_at=end_at,
        due_at=due_at,
        remind_at=remind_at,
    )


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
