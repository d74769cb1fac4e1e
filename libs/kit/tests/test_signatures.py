"""Signed webhooks: the HMAC the SMS provider's callbacks carry, checked in constant time, with a
replay window."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from crm_kit.signatures import sign, verify

pytestmark = pytest.mark.unit

SECRET = b"receipts-secret"
BODY = b'{"id":"msg_1","status":"delivered","time":"2026-03-01T10:00:00+00:00"}'
NOW = 1_772_359_200  # 2026-03-01T10:00:00Z
TS = str(NOW)


def test_the_signature_is_hmac_sha256_hex_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET, f"{TS}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, TS, BODY) == expected
    assert len(expected) == 64


def test_a_fresh_correct_signature_verifies_at_either_edge_of_the_window() -> None:
    signature = sign(SECRET, TS, BODY)
    assert verify(SECRET, TS, BODY, signature, NOW)
    assert verify(SECRET, TS, BODY, signature, datetime.fromtimestamp(NOW, UTC))
    assert verify(SECRET, TS, BODY, signature.upper(), NOW)
    assert verify(SECRET, TS, BODY, signature, NOW + 300)
    assert verify(SECRET, TS, BODY, signature, NOW - 300)
    assert verify(SECRET, TS, BODY, signature, NOW + 60, tolerance_seconds=60)


def test_a_wrong_signature_or_secret_is_refused() -> None:
    signature = sign(SECRET, TS, BODY)
    assert not verify(SECRET, TS, BODY, "0" * 64, NOW)
    assert not verify(b"another-secret", TS, BODY, signature, NOW)
    assert not verify(SECRET, TS, BODY, signature[:-1], NOW)
    assert not verify(SECRET, TS, BODY, "", NOW)
    # An unconfigured (empty) secret never lets anything through, not even its own signature.
    assert not verify(b"", TS, BODY, sign(b"", TS, BODY), NOW)


def test_a_tampered_body_or_timestamp_is_refused() -> None:
    signature = sign(SECRET, TS, BODY)
    assert not verify(SECRET, TS, BODY.replace(b"delivered", b"failed"), signature, NOW)
    assert not verify(SECRET, TS, BODY + b" ", signature, NOW)
    # The timestamp is signed: moving it into the window breaks the signature.
    assert not verify(SECRET, str(NOW + 1), BODY, signature, NOW)


def test_a_stale_or_future_timestamp_is_a_replay_even_when_correctly_signed() -> None:
    old = str(NOW - 301)
    assert not verify(SECRET, old, BODY, sign(SECRET, old, BODY), NOW)
    ahead = str(NOW + 301)
    assert not verify(SECRET, ahead, BODY, sign(SECRET, ahead, BODY), NOW)
    assert not verify(SECRET, TS, BODY, sign(SECRET, TS, BODY), NOW + 61, tolerance_seconds=60)


@pytest.mark.parametrize("timestamp", ["", "abc", "-5", "1.5", "١٧٧٢٣٥٩٢٠٠", " 1772359200"])
def test_a_malformed_timestamp_is_refused_without_raising(timestamp: str) -> None:
    assert not verify(SECRET, timestamp, BODY, sign(SECRET, timestamp, BODY), NOW)


def test_a_non_ascii_signature_is_refused_without_raising() -> None:
    assert not verify(SECRET, TS, BODY, "é" * 64, NOW)
