"""Signed webhooks: how a callback proves who sent it and when (an SMS provider's delivery receipts
and inbound replies). Pure.

The sender puts two headers on the request: ``X-Timestamp``, the Unix time in whole seconds as
decimal text, and ``X-Signature``, the lowercase hex HMAC-SHA256 under the shared secret of
``f"{timestamp}.".encode() + body`` (the exact bytes of the body as sent). The receiver recomputes
it over the raw body, compares in constant time and refuses a timestamp more than a few minutes
away from its own clock, so a captured request cannot be replayed later.

The one definition for both ends: the notifications service verifies with it and the devstack's
fake provider signs with it.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Timestamp"
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.".encode() + body`` under secret."""
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    now: datetime | float,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether signature is sign(secret, timestamp, body) and timestamp (Unix seconds) is within
    tolerance_seconds of now (an aware datetime, or Unix seconds) either way. Never raises on
    malformed input: a timestamp that is not whole seconds or a signature that is not text of
    the right shape is simply not valid."""
    if not secret or not timestamp.isascii() or not timestamp.isdigit():
        return False
    current = now.timestamp() if isinstance(now, datetime) else float(now)
    if abs(current - int(timestamp)) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body).encode("ascii")
    try:
        given = signature.strip().lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected, given)
