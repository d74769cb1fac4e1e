"""The token bucket: burst, refusal with the wait until a token, refill, bounded keys, the 429."""

from __future__ import annotations

import orjson
import pytest

from crm_gateway.platform.ratelimit import RateLimiter, too_many_requests

pytestmark = pytest.mark.unit


def test_allows_the_burst_then_refuses_with_a_positive_wait() -> None:
    limiter = RateLimiter(rate_per_second=2.0, burst=3)

    assert [limiter.check("rep-1", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.check("rep-1", now=100.0)

    assert wait == pytest.approx(0.5)


def test_a_refused_request_takes_no_token() -> None:
    limiter = RateLimiter(rate_per_second=1.0, burst=1)
    limiter.check("k", now=0.0)

    assert limiter.check("k", now=0.0) == pytest.approx(1.0)
    assert limiter.check("k", now=0.5) == pytest.approx(0.5)
    assert limiter.check("k", now=1.0) == 0.0


def test_refills_over_time_up_to_the_burst() -> None:
    limiter = RateLimiter(rate_per_second=10.0, burst=5)
    for _ in range(5):
        limiter.check("k", now=0.0)
    assert limiter.check("k", now=0.0) > 0

    assert limiter.check("k", now=0.1) == 0.0
    assert limiter.check("k", now=0.1) > 0
    # A long idle time refills to the burst, not beyond it.
    assert [limiter.check("k", now=1000.0) for _ in range(5)] == [0.0] * 5
    assert limiter.check("k", now=1000.0) > 0


def test_keys_have_separate_buckets() -> None:
    limiter = RateLimiter(rate_per_second=1.0, burst=1)

    assert limiter.check("a", now=0.0) == 0.0
    assert limiter.check("a", now=0.0) > 0
    assert limiter.check("b", now=0.0) == 0.0


def test_keys_are_bounded_by_evicting_the_least_recently_used() -> None:
    limiter = RateLimiter(rate_per_second=1.0, burst=1, max_keys=2)
    limiter.check("a", now=0.0)
    limiter.check("b", now=0.0)
    limiter.check("a", now=0.0)  # refused, but "a" is now the most recently used
    limiter.check("c", now=0.0)

    assert len(limiter) == 2
    # "a" is still empty; "b" was evicted and starts again with a full bucket.
    assert limiter.check("a", now=0.0) > 0
    assert limiter.check("b", now=0.0) == 0.0


def test_uses_the_monotonic_clock_by_default() -> None:
    limiter = RateLimiter(rate_per_second=1.0, burst=1)

    assert limiter.check("k") == 0.0
    assert 0 < limiter.check("k") <= 1.0


@pytest.mark.parametrize("args", [(0.0, 1), (1.0, 0), (-1.0, 5)])
def test_refuses_a_nonsensical_configuration(args: tuple[float, int]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(*args)


@pytest.mark.parametrize(("retry_after", "header"), [(0.01, "1"), (0.0, "1"), (1.0, "1"), (1.2, "2"), (59.5, "60")])
def test_too_many_requests_is_a_429_problem_with_whole_seconds(retry_after: float, header: str) -> None:
    response = too_many_requests(retry_after, "Too many requests for this caller.")

    assert response.status_code == 429
    assert response.headers["retry-after"] == header
    assert response.media_type == "application/problem+json"
    assert orjson.loads(response.body) == {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "Too many requests for this caller.",
    }
