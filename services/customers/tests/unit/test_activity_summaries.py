"""Timeline summaries of activities reps log: who did what, in the timeline's language (English)."""

from __future__ import annotations

import pytest

from crm_customers.domain import ACTIVITY_TOUCHES, TouchKind, activity_summary

pytestmark = pytest.mark.unit


def test_a_call_says_its_outcome_length_and_who_made_it() -> None:
    text = activity_summary(
        kind="call", outcome="callback_requested", summary="לחזור מחר", actor="rep-dana", duration_seconds=185
    )
    assert text == "Call — callback requested (3 min) by rep-dana: לחזור מחר"
    assert activity_summary(kind="call", outcome="busy", summary="", actor="rep-dana", duration_seconds=40) == (
        "Call — busy (40 s) by rep-dana"
    )


def test_a_reps_name_is_shown_rather_than_their_subject() -> None:
    text = activity_summary(
        kind="sms", outcome="", summary="سلام", actor="rep-dana", duration_seconds=0, actor_name="דנה לוי"
    )
    assert text == "SMS sent by דנה לוי: سلام"


def test_other_kinds_name_what_was_done() -> None:
    assert activity_summary(kind="email", outcome="", summary="הצעת מחיר", actor="a", duration_seconds=0) == (
        "E-mail sent by a: הצעת מחיר"
    )
    assert activity_summary(kind="meeting", outcome="", summary="", actor="", duration_seconds=0) == "Meeting"


def test_every_activity_kind_has_its_own_touch_kind() -> None:
    assert set(ACTIVITY_TOUCHES) == {"call", "meeting", "note", "task", "email", "sms"}
    kinds = [touch for touch, _, _ in ACTIVITY_TOUCHES.values()]
    assert len(set(kinds)) == 6 and all(isinstance(k, TouchKind) for k in kinds)
    assert all(len(k.value) <= 30 for k in TouchKind)  # the timeline's kind column
