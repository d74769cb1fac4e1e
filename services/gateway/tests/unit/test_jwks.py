"""The JWKS cache against an issuer that goes down, answers slowly, or is asked for random kids:
tokens signed with a known key keep verifying, and no token decides how often the issuer is called."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable

import httpx
import jwt
import pytest

from crm_gateway.platform.auth import AuthError, JwksKeys, JwksUnavailable, Principal, TokenVerifier
from crm_kit.dev_issuer import DEFAULT_AUDIENCE, DEV_ISSUER, DevIssuer

pytestmark = pytest.mark.unit

JWKS_URL = "https://issuer.example/jwks"


class Issuer:
    """The identity provider's JWKS endpoint: counts fetches; can be down or hold answers back."""

    def __init__(self, keys: DevIssuer) -> None:
        self.keys = keys
        self.fetches = 0
        self.down = False
        self.hold: asyncio.Event | None = None
        self.document: dict[str, object] | None = None  # what it answers instead of its keys

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        if self.hold is not None:
            await self.hold.wait()
        if self.down:
            return httpx.Response(503, text="identity provider maintenance")
        return httpx.Response(200, json=self.document or self.keys.jwks())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def idp(issuer: DevIssuer) -> Issuer:
    return Issuer(issuer)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(idp: Issuer, clock: Clock) -> TokenVerifier:
    keys = JwksKeys(
        JWKS_URL,
        ttl_seconds=300,
        min_refresh_seconds=30,
        max_backoff_seconds=240,
        cold_retry_seconds=1,
        transport=httpx.MockTransport(idp.handle),
        clock=clock,
    )
    return TokenVerifier(keys, issuer=DEV_ISSUER, audience=DEFAULT_AUDIENCE, algorithms=["ES256"], leeway_seconds=30)


def token_with_kid(issuer: DevIssuer, kid: str) -> str:
    claims = jwt.decode(issuer.mint_demo("sales_rep"), options={"verify_signature": False})
    return jwt.encode(claims, issuer.private_key, algorithm="ES256", headers={"kid": kid})


async def verify_many(verify: Callable[[], object], n: int) -> list[object]:
    async def one() -> object:
        try:
            return await verify()  # type: ignore[misc]
        except (AuthError, JwksUnavailable) as exc:
            return exc

    return await asyncio.gather(*(one() for _ in range(n)))


async def test_while_the_issuer_is_down_the_last_good_keys_verify_and_fetches_back_off(
    verifier: TokenVerifier, idp: Issuer, clock: Clock, issuer: DevIssuer
) -> None:
    token = issuer.mint_demo("sales_rep")
    assert isinstance(await verifier.verify(token), Principal)
    assert idp.fetches == 1

    idp.down = True
    clock.now += 301  # the cached set is past its TTL: a refresh is due, and fails
    outcomes = [await verifier.verify(token) for _ in range(200)]
    await asyncio.sleep(0)  # let the background refresh finish

    assert all(isinstance(p, Principal) for p in outcomes)  # the last good set keeps verifying
    assert idp.fetches == 2  # 200 requests while down: one fetch

    # Back-off: the next attempt waits min_refresh (30 s), then 60 s, 120 s, capped at 240 s.
    attempts = []
    for _ in range(600):  # ten minutes, one request a second
        clock.now += 1
        before = idp.fetches
        assert isinstance(await verifier.verify(token), Principal)
        await asyncio.sleep(0)
        if idp.fetches > before:
            attempts.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps == [60, 120, 240]  # 4 fetches in ten minutes, not 600

    idp.down = False
    clock.now += 240
    await verifier.verify(token)
    await asyncio.sleep(0)
    fetched = idp.fetches
    clock.now += 31  # back to the normal schedule: no fetch before the TTL
    for _ in range(50):
        await verifier.verify(token)
    assert idp.fetches == fetched


async def test_random_kids_do_not_make_the_gateway_hammer_the_issuer(
    verifier: TokenVerifier, idp: Issuer, clock: Clock, issuer: DevIssuer
) -> None:
    await verifier.verify(issuer.mint_demo("sales_rep"))
    assert idp.fetches == 1

    for _ in range(100):
        with pytest.raises(AuthError, match="unknown key"):
            await verifier.verify(token_with_kid(issuer, uuid.uuid4().hex))
    assert idp.fetches == 1  # within min_refresh of the last fetch: none

    clock.now += 31
    for _ in range(100):
        with pytest.raises(AuthError, match="unknown key"):
            await verifier.verify(token_with_kid(issuer, uuid.uuid4().hex))
    assert idp.fetches == 2  # one rotation check per min_refresh, whatever the kids

    idp.down = True
    clock.now += 31
    for _ in range(100):
        with pytest.raises(AuthError, match="unknown key"):
            await verifier.verify(token_with_kid(issuer, uuid.uuid4().hex))
    assert idp.fetches == 3
    assert isinstance(await verifier.verify(issuer.mint_demo("sales_rep")), Principal)


async def test_one_fetch_in_flight_however_many_requests_wait_for_it(
    verifier: TokenVerifier, idp: Issuer, issuer: DevIssuer
) -> None:
    idp.hold = asyncio.Event()
    token = issuer.mint_demo("sales_rep")
    waiting = asyncio.ensure_future(verify_many(lambda: verifier.verify(token), 50))
    for _ in range(5):
        await asyncio.sleep(0)
    idp.hold.set()

    outcomes = await waiting

    assert all(isinstance(p, Principal) for p in outcomes)
    assert idp.fetches == 1


async def test_an_issuer_down_at_start_is_503_and_retried_on_a_short_back_off(
    verifier: TokenVerifier, idp: Issuer, clock: Clock, issuer: DevIssuer
) -> None:
    idp.down = True
    token = issuer.mint_demo("sales_rep")

    outcomes = await verify_many(lambda: verifier.verify(token), 100)

    assert all(isinstance(o, JwksUnavailable) for o in outcomes)
    assert idp.fetches == 1
    clock.now += 1  # no key at all: retried sooner than a held set (1 s, then 2 s, …)
    await verify_many(lambda: verifier.verify(token), 10)
    assert idp.fetches == 2
    clock.now += 1
    await verify_many(lambda: verifier.verify(token), 10)
    assert idp.fetches == 2
    idp.down = False
    clock.now += 1
    assert isinstance(await verifier.verify(token), Principal)
    assert idp.fetches == 3


async def test_an_issuer_down_for_long_at_start_is_retried_every_30_s_at_most(
    verifier: TokenVerifier, idp: Issuer, clock: Clock, issuer: DevIssuer
) -> None:
    """Without any key no request can succeed, so a long outage at start must not leave the
    gateway refusing everyone for minutes after the issuer is back."""
    idp.down = True
    token = issuer.mint_demo("sales_rep")
    for _ in range(12):  # an hour of outage, a request every 5 minutes: each one fetches and fails
        clock.now += 300
        await verify_many(lambda: verifier.verify(token), 1)
    fetches = idp.fetches
    idp.down = False
    clock.now += 31

    assert isinstance(await verifier.verify(token), Principal)
    assert idp.fetches == fetches + 1


async def test_an_empty_or_broken_key_set_does_not_replace_the_good_one(
    verifier: TokenVerifier, idp: Issuer, clock: Clock, issuer: DevIssuer
) -> None:
    token = issuer.mint_demo("sales_rep")
    await verifier.verify(token)
    for document in ({"keys": []}, {"keys": [{"kid": "x", "kty": "nonsense"}]}, {"no": "keys"}):
        idp.document = document
        clock.now += 301
        await verifier.verify(token)
        await asyncio.sleep(0)
        assert isinstance(await verifier.verify(token), Principal)
    assert idp.fetches == 4
