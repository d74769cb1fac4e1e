"""Who is calling: OIDC bearer tokens (JWT) verified against the issuer's JWKS.

Every /api/v1 route depends on `authenticate`. A token is accepted only when its header names an
allowed asymmetric algorithm (RS256/ES256 by default: `none` and HMAC are never accepted, so an
RSA public key cannot be abused as an HMAC secret), its `kid` is in the issuer's JWKS with a key of
the matching type, the signature verifies, and `iss`, `aud`, `exp`, `iat` (and `nbf` when present)
hold within a bounded clock skew. Anything else is 401 with `WWW-Authenticate: Bearer`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import ceil
from typing import Any

import httpx
import jwt
from fastapi import HTTPException, Request
from jwt import PyJWK
from starlette.datastructures import Headers
from starlette.types import Scope

from crm_gateway.platform.authz import POLICIES, Role
from crm_gateway.platform.ratelimit import RateLimiter
from crm_kit import caller

log = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 8192
# With no key set at all (the issuer was down at start), retries back off to at most this.
COLD_MAX_BACKOFF_SECONDS = 30.0
# Which key types may verify which algorithms (defeats RSA/EC/HMAC confusion).
_KEY_TYPE_OF_ALG = {"RS256": "RSA", "RS384": "RSA", "RS512": "RSA", "ES256": "EC", "ES384": "EC", "PS256": "RSA"}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of an /api/v1 request."""

    subject: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    # The team a manager manages or a rep belongs to (token claim `team_id`).
    team_id: str = ""
    # The rep id this user works leads as (claim `rep_id`, else the subject).
    rep_id: str = ""

    def has_role(self, role: Role) -> bool:
        return role in self.roles


class AuthError(Exception):
    """The token is missing or not acceptable; the message is safe to show."""


class JwksUnavailable(Exception):
    """The issuer's JWKS could not be fetched."""


class JwksKeys:
    """The issuer's signing keys by kid, fetched from its JWKS URL and cached.

    A token is never allowed to decide how often the issuer is called: every fetch, whatever asked
    for it, waits for `_next_fetch_at`. After a good fetch the set is refetched after `ttl_seconds`
    (in the background: callers go on with the cached set), or after `min_refresh_seconds` when a
    token names a kid not in it (key rotation); after a failed one the wait doubles from
    `min_refresh_seconds` up to `max_backoff_seconds`, and the last good set keeps verifying. Only
    one fetch is ever in flight; callers that need its result wait for that one. With no set at all
    (the issuer was down when the gateway started) the first retries come sooner — from
    `cold_retry_seconds`, doubling — since no token can be verified until one succeeds.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: float = 300.0,
        min_refresh_seconds: float = 30.0,
        max_backoff_seconds: float = 300.0,
        cold_retry_seconds: float = 1.0,
        timeout: float = 3.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        # None: the network. Tests hand in the gateway's own ASGI app serving the dev JWKS, or an
        # issuer that fails.
        self.transport = transport
        self.ttl_seconds = ttl_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.cold_retry_seconds = cold_retry_seconds
        self.timeout = timeout
        self.clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")  # last good fetch
        self._next_fetch_at = float("-inf")  # no fetch of any kind starts before this
        self._failures = 0  # consecutive failed fetches
        self._in_flight: asyncio.Task[None] | None = None

    async def get(self, kid: str) -> PyJWK | None:
        """The key named kid, or None when the issuer does not have it (as far as we may ask)."""
        key = self._keys.get(kid)
        if key is not None:
            if self.clock() - self._fetched_at > self.ttl_seconds:
                self._start_fetch()  # refresh behind the request: the cached key answers now
            return key
        fetch = self._start_fetch() or self._in_flight
        if fetch is not None:
            # shield: a caller that gives up must not cancel the fetch the others wait for.
            await asyncio.shield(fetch)
        if not self._keys and self._failures:
            raise JwksUnavailable("the issuer's JWKS could not be fetched")
        return self._keys.get(kid)

    def _start_fetch(self) -> asyncio.Task[None] | None:
        """Start a fetch if none is in flight and the schedule allows one now; the new fetch."""
        if self._in_flight is not None or self.clock() < self._next_fetch_at:
            return None
        self._in_flight = asyncio.ensure_future(self._fetch())
        return self._in_flight

    async def _fetch(self) -> None:
        started = self.clock()
        try:
            keys = await self._download()
        except Exception as exc:  # any failure (network, status, bad document) backs off alike
            self._failures += 1
            base, cap = (
                (self.min_refresh_seconds, self.max_backoff_seconds)
                if self._keys
                # Cold: every request fails until a fetch succeeds, so never wait long for the next.
                else (self.cold_retry_seconds, min(self.max_backoff_seconds, COLD_MAX_BACKOFF_SECONDS))
            )
            backoff = min(cap, base * 2 ** (self._failures - 1))
            self._next_fetch_at = started + backoff
            log.warning(
                "jwks fetch failed; keeping the last good key set",
                extra={"jwks_url": self.url, "error": str(exc), "retry_in_seconds": backoff},
            )
        else:
            self._keys = keys
            self._failures = 0
            self._fetched_at = started
            self._next_fetch_at = started + self.min_refresh_seconds
        finally:
            self._in_flight = None

    async def _download(self) -> dict[str, PyJWK]:
        async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
            response = await client.get(self.url)
            response.raise_for_status()
            document = response.json()
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("the JWKS document has no keys list")
        keys: dict[str, PyJWK] = {}
        for jwk in document["keys"]:
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or not jwk.get("kid"):
                continue
            try:
                keys[str(jwk["kid"])] = PyJWK(jwk)
            except jwt.PyJWTError:
                log.warning("jwks key skipped", extra={"kid": jwk.get("kid")})
        if not keys:
            # An issuer answering an empty set is broken, not rotating: keep the last good one.
            raise ValueError("the JWKS document has no usable signing key")
        return keys


# Verified tokens remembered (a client sends the same token with every request; checking its
# signature each time is most of the cost of authentication): at most this many, each for at most
# VERIFIED_TTL_SECONDS and never past its own expiry. Only a token that passed every check enters,
# so a flood of made-up tokens neither grows the cache nor evicts anyone for long.
VERIFIED_CACHE_SIZE = 10_000
VERIFIED_TTL_SECONDS = 60.0


class TokenVerifier:
    """Verifies bearer tokens and turns their claims into a Principal."""

    def __init__(
        self,
        keys: JwksKeys,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str],
        leeway_seconds: int,
        roles_claim: str = "roles",
    ) -> None:
        unknown = set(algorithms) - set(_KEY_TYPE_OF_ALG)
        if unknown:
            raise ValueError(f"only asymmetric algorithms are allowed, not {sorted(unknown)}")
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.leeway_seconds = leeway_seconds
        self.roles_claim = roles_claim
        # token → (remembered until, principal, kid, the key that verified it)
        self._verified: OrderedDict[str, tuple[float, Principal, str, PyJWK]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise AuthError("The bearer token is missing or too long.")
        now = time.time()
        remembered = self._verified.get(token)
        if remembered is not None:
            until, principal, kid, verified_with = remembered
            # The key set is still asked every time (it refreshes itself when due): a token
            # stays remembered only while the issuer still publishes the key that verified it.
            if until > now and await self.keys.get(kid) is verified_with:
                return principal
            del self._verified[token]
        key, alg = await self._signing_key(token)
        claims = self._claims(token, key, alg)
        principal = self.principal(claims)
        until = min(float(claims["exp"]), now + VERIFIED_TTL_SECONDS)
        self._remember(token, (until, principal, str(key.key_id), key))
        return principal

    def _remember(self, token: str, entry: tuple[float, Principal, str, PyJWK]) -> None:
        self._verified[token] = entry
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)  # the oldest entry

    async def _signing_key(self, token: str) -> tuple[PyJWK, str]:
        """The issuer's key the token's header names, checked against the algorithm it claims."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError("The bearer token is malformed.") from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise AuthError("The bearer token's algorithm is not accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("The bearer token names no key (kid).")
        key = await self.keys.get(kid)
        if key is None:
            raise AuthError("The bearer token was signed by an unknown key.")
        if key.key_type != _KEY_TYPE_OF_ALG[alg] or key.algorithm_name != alg:
            raise AuthError("The bearer token's algorithm does not match its key.")
        return key, alg

    def _claims(self, token: str, key: PyJWK, alg: str) -> dict[str, Any]:
        """The verified claims: signature, issuer, audience and times within the leeway."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("The bearer token has expired.") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthError("The bearer token is not valid yet.") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("The bearer token is not meant for this API (audience).") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("The bearer token comes from an unknown issuer.") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("The bearer token is not valid.") from exc
        return claims

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 200:
            raise AuthError("The bearer token has no usable subject.")
        raw_roles = claims.get(self.roles_claim, [])
        names = raw_roles if isinstance(raw_roles, list) else []
        roles = frozenset(Role(name) for name in names if isinstance(name, str) and name in Role.__members__.values())
        team_id = claims.get("team_id", "")
        # rep_id defaults to the subject only when the claim is absent; a claim that is there but
        # empty (or not a string) names no rep, and list scopes then fail closed (authz.list_scope).
        rep_id = claims.get("rep_id", subject)
        return Principal(
            subject=subject,
            roles=roles,
            team_id=team_id.strip() if isinstance(team_id, str) else "",
            rep_id=rep_id.strip() if isinstance(rep_id, str) else "",
        )


def bearer_token(headers: Headers) -> str:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("A bearer token is required (Authorization: Bearer <token>).")
    return token.strip()


async def bearer_subject(scope: Scope) -> str | None:
    """The subject of the request's valid bearer token, else None (for middleware that serves
    only authenticated callers). The principal is kept in the request's state, so `authenticate`
    does not verify the token again."""
    verifier: TokenVerifier = scope["app"].state.verifier
    try:
        principal = await verifier.verify(bearer_token(Headers(scope=scope)))
    except (AuthError, JwksUnavailable):
        return None
    scope.setdefault("state", {})["principal"] = principal
    return principal.subject


def principal_wait(limiter: RateLimiter, subject: str) -> float:
    """Take a token of the principal's rate limit: 0.0, else the seconds until one is back."""
    return limiter.check(f"sub:{subject}")


def refuse_anonymous_flood(request: Request, *, count: bool = True) -> None:
    """Count a request that has no valid principal against its client address (429 with
    Retry-After once the address has spent its budget). Only failures are counted: a valid token
    never is, so people behind a NAT shared with a flood keep working under their own limit.
    With `count` false it only refuses an address whose budget is already spent (before work
    whose failure would be counted, such as verifying a web-form key)."""
    limiter: RateLimiter = request.app.state.anonymous_limiter
    address = request.app.state.client_addresses.bucket(request)
    wait = limiter.check(address) if count else limiter.spent(address)
    if wait > 0:
        raise HTTPException(
            429,
            "Too many requests without a valid token from this address; slow down.",
            headers={"Retry-After": str(max(1, ceil(wait)))},
        )


def unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": 'Bearer realm="crm", error="invalid_token"'})


async def authenticate(request: Request) -> Principal:
    """Resolve the caller from its bearer token (401 when missing or invalid); the principal is
    kept on request.state for the authorization dependency and the audit trail."""
    known = request.scope.get("state", {}).get("principal")
    if isinstance(known, Principal):
        return known  # verified already, by the Idempotency-Key middleware
    verifier: TokenVerifier = request.app.state.verifier
    try:
        principal = await verifier.verify(bearer_token(request.headers))
    except AuthError as exc:
        refuse_anonymous_flood(request)
        raise unauthorized(str(exc)) from exc
    except JwksUnavailable as exc:
        raise HTTPException(503, "The identity provider's keys are unavailable.") from exc
    request.state.principal = principal
    return principal


async def authorize(request: Request) -> AsyncIterator[Principal]:
    """The dependency of every /api/v1 route: authenticate, apply the route's policy
    (`crm_gateway.platform.authz.POLICIES`, 403 for a role outside it), the per-principal rate limit
    (429 with Retry-After), then run the route acting as the principal within the request's time
    budget — the chassis' gRPC client forwards the subject and request id (the services audit
    changes under them) and gives every backend call only the budget left."""
    principal = await authenticate(request)
    route = request.scope.get("route")
    name = getattr(route, "name", "")
    policy = POLICIES.get(name)
    if policy is None:
        # Fail closed: a route nobody wrote a rule for is refused (and a unit test fails).
        log.error("route without a permission rule", extra={"route": name})
        raise HTTPException(403, "This route has no permission rule.")
    if not principal.roles & policy.roles:
        raise HTTPException(403, "Your roles do not allow this action.")
    wait = principal_wait(request.app.state.principal_limiter, principal.subject)
    if wait > 0:
        raise HTTPException(
            429, "Too many requests for this caller; slow down.", headers={"Retry-After": str(max(1, ceil(wait)))}
        )
    with acting_for(request, principal.subject, LONG_ROUTES.get(name)):
        yield principal


# Routes whose work outlasts the request's budget, and the setting that gives them theirs: the
# audience list's upload matches up to 250,000 lines in one call (the lead import streams, and
# its stream call takes its own timeout).
LONG_ROUTES = {"import_audience_list": "audience_list_timeout_seconds"}


@contextmanager
def acting_for(request: Request, actor: str, budget_setting: str | None = None) -> Iterator[None]:
    """Backend calls in this block act for actor (forwarded with the request id) within the
    request's time budget (`request_timeout_seconds`, or the route's own setting; propagated as
    gRPC deadlines)."""
    settings = request.app.state.settings
    seconds = getattr(settings, budget_setting) if budget_setting else settings.request_timeout_seconds
    with (
        caller.acting_as(actor, request_id(request)),
        caller.deadline_after(seconds),
    ):
        yield


def request_id(request: Request) -> str:
    """The request id the observability middleware assigned (echoed as X-Request-ID)."""
    value = request.scope.get("state", {}).get("request_id", "")
    return value if isinstance(value, str) else ""
