"""What every way out (the SMS provider, the SMTP relay) answers a send with: a receipt, or an
error that says whether the same send may succeed later. Each adapter retries its transient
failures a few times itself and reports how many attempts it made, and a retry loop shared by
both (`with_retries`) keeps the counting in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter


class SendError(Exception):
    """A send did not succeed; attempts is how many requests were made."""

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class TransientSendError(SendError):
    """The same send may succeed later (unreachable, throttled, a 5xx / an SMTP 4xx)."""


class PermanentSendError(SendError):
    """The message was refused for good (an HTTP 4xx other than 429 / an SMTP 5xx): resending cannot help."""


@dataclass(frozen=True)
class SendReceipt:
    provider_message_id: str
    attempts: int


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    backoff_initial_seconds: float = 0.1
    backoff_max_seconds: float = 1.0


async def with_retries(policy: RetryPolicy, send: Callable[[], Awaitable[str]]) -> SendReceipt:
    """Call send until it returns the provider's message id, retrying TransientSendError with a
    short jittered back-off; the error raised at the end carries the attempts made."""
    made = 0
    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TransientSendError),
            stop=stop_after_attempt(policy.attempts),
            wait=wait_exponential_jitter(
                multiplier=policy.backoff_initial_seconds,
                max=policy.backoff_max_seconds,
                jitter=policy.backoff_initial_seconds,
            ),
            reraise=True,
        ):
            with attempt:
                made += 1
                return SendReceipt(provider_message_id=await send(), attempts=made)
    except SendError as exc:
        exc.attempts = made
        raise
    raise AssertionError("unreachable")
