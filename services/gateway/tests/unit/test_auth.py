"""Bearer tokens: what the gateway accepts and every way a token must be refused, and the
permission table covering every route."""

from __future__ import annotations

import base64
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.routing import APIRoute

from crm_gateway.app import create_app
from crm_gateway.platform import auth
from crm_gateway.platform.auth import TokenVerifier
from crm_gateway.platform.authz import POLICIES, PUBLIC_ROUTES, Role
from crm_gateway.settings import GatewaySettings
from crm_kit.dev_issuer import DEFAULT_AUDIENCE, DEV_ISSUER, DevIssuer

pytestmark = pytest.mark.unit


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": DEV_ISSUER,
        "aud": DEFAULT_AUDIENCE,
        "sub": "rep-dana",
        "iat": now,
        "exp": now + 600,
        "roles": ["sales_rep"],
        "team_id": "team-media",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


async def test_a_valid_token_names_the_caller(client: httpx.AsyncClient, issuer: DevIssuer) -> None:
    token = jwt.encode(claims(), issuer.private_key, algorithm="ES256", headers={"kid": issuer.kid})

    response = await me(client, token)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "subject": "rep-dana",
        "roles": ["sales_rep"],
        "team_id": "team-media",
        "rep_id": "rep-dana",
    }


def hs256(secret: bytes, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{b64(header)}.{b64(payload)}"
    mac = hmac.new(secret, signing_input.encode(), "sha256").digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _attack_tokens(issuer: DevIssuer) -> dict[str, str]:
    key, kid = issuer.private_key, issuer.kid
    now = int(time.time())
    public_pem = issuer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    other_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = jwt.encode(claims(), key, algorithm="ES256", headers={"kid": kid})
    head, _body, signature = good.split(".")
    return {
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64(claims())}.",
        # The classic confusion: the public key used as an HMAC secret.
        "HS256 with the public key": hs256(public_pem, {"alg": "HS256", "typ": "JWT", "kid": kid}, claims()),
        "RS256 claimed for an EC key": jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": kid}),
        "signed by another key": jwt.encode(claims(), other_key, algorithm="ES256", headers={"kid": kid}),
        "unknown kid": jwt.encode(claims(), other_key, algorithm="ES256", headers={"kid": "not-a-key"}),
        "no kid": jwt.encode(claims(), key, algorithm="ES256"),
        "tampered claims": f"{head}.{b64(claims(roles=['admin']))}.{signature}",
        "expired": jwt.encode(claims(iat=now - 7200, exp=now - 3600), key, algorithm="ES256", headers={"kid": kid}),
        "not yet valid": jwt.encode(claims(nbf=now + 3600), key, algorithm="ES256", headers={"kid": kid}),
        "wrong audience": jwt.encode(claims(aud="another-api"), key, algorithm="ES256", headers={"kid": kid}),
        "wrong issuer": jwt.encode(claims(iss="https://evil.example"), key, algorithm="ES256", headers={"kid": kid}),
        "no expiry": jwt.encode(claims(exp=None), key, algorithm="ES256", headers={"kid": kid}),
        "no subject": jwt.encode(claims(sub=None), key, algorithm="ES256", headers={"kid": kid}),
        "garbage": "not.a.jwt",
        "oversized": "a" * 9000,
    }


ATTACKS = [
    "alg none",
    "HS256 with the public key",
    "RS256 claimed for an EC key",
    "signed by another key",
    "unknown kid",
    "no kid",
    "tampered claims",
    "expired",
    "not yet valid",
    "wrong audience",
    "wrong issuer",
    "no expiry",
    "no subject",
    "garbage",
    "oversized",
]


@pytest.mark.parametrize("attack", ATTACKS)
async def test_a_bad_token_is_401_problem(client: httpx.AsyncClient, issuer: DevIssuer, backend, attack: str) -> None:
    response = await me(client, _attack_tokens(issuer)[attack])

    assert response.status_code == 401, (attack, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert backend.recorder.calls == []


async def test_clock_skew_within_the_leeway_is_accepted(client: httpx.AsyncClient, issuer: DevIssuer) -> None:
    now = int(time.time())
    token = jwt.encode(
        claims(iat=now - 3600, exp=now - 10), issuer.private_key, algorithm="ES256", headers={"kid": issuer.kid}
    )

    assert (await me(client, token)).status_code == 200


@pytest.mark.parametrize("header", ["", "Bearer", "Basic dXNlcjpwYXNz", "Bearer  "])
async def test_a_missing_or_non_bearer_authorization_is_401(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get("/api/v1/me", headers={"Authorization": header})

    assert response.status_code == 401


async def test_a_token_without_a_known_role_is_403_on_a_route(client: httpx.AsyncClient, issuer: DevIssuer) -> None:
    token = issuer.mint("someone", ["superuser"])

    response = await client.get("/api/v1/leads", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_per_principal_rate_limit_is_429_with_retry_after(
    backend, gateway, settings_for, issuer: DevIssuer
) -> None:
    app = create_app(settings_for(backend.address, rate_limit_per_minute=1, rate_limit_burst=2))
    async with gateway(app) as http:
        statuses = [(await http.get("/api/v1/me")).status_code for _ in range(3)]
        limited = await http.get("/api/v1/me")
        # Another principal has its own bucket.
        other = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {issuer.mint_demo('marketing')}"})

    assert statuses[:2] == [200, 200]
    assert statuses[2] == 429
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"] == "application/problem+json"
    assert other.status_code == 200


def api_routes_of(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, including those of included routers (FastAPI keeps those as a branch)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found.extend(api_routes_of(route.original_router.routes))
    return found


def test_every_route_has_a_permission_rule_or_is_public_on_purpose(settings: GatewaySettings) -> None:
    app = create_app(settings)
    api_routes = {route.name for route in api_routes_of(app.routes)}
    documentation = {"openapi", "swagger_ui_html", "swagger_ui_redirect", "redoc_html"}

    missing = api_routes - set(POLICIES) - set(PUBLIC_ROUTES) - documentation
    stale = (set(POLICIES) | set(PUBLIC_ROUTES)) - api_routes

    assert not missing, f"routes without a permission rule: {sorted(missing)}"
    assert not stale, f"rules for routes that no longer exist: {sorted(stale)}"
    assert len(api_routes) >= len(POLICIES) + 4
    assert all(policy.roles <= set(Role) and policy.roles for policy in POLICIES.values())


@pytest.mark.parametrize(
    "settings_override",
    [
        {
            "auth_dev_issuer_key_file": "/tmp/key.pem",
            "auth_issuer": "https://id.example",
            "auth_jwks_url": "https://id.example/jwks",
        },
        {"auth_issuer": DEV_ISSUER, "auth_jwks_url": "https://id.example/jwks"},
        {"auth_issuer": "https://id.example", "auth_jwks_url": "http://id.example/jwks"},
    ],
)
def test_production_refuses_the_development_issuer(settings_override: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GatewaySettings(environment="production", **settings_override)


def test_production_accepts_a_real_issuer() -> None:
    settings = GatewaySettings(
        environment="production", auth_issuer="https://id.example", auth_jwks_url="https://id.example/jwks"
    )

    assert settings.auth_dev_issuer_key_file == ""


def test_only_asymmetric_algorithms_can_be_configured(settings_for, backend) -> None:
    with pytest.raises(ValueError):
        create_app(settings_for(backend.address, auth_algorithms=["HS256"]))


class CountingKeys:
    """The issuer's one key (None once withdrawn); counts the signatures checked with it."""

    def __init__(self, issuer: DevIssuer) -> None:
        self.key: jwt.PyJWK | None = jwt.PyJWK(issuer.public_jwk)
        self.signature_checks = 0

    async def get(self, kid: str) -> jwt.PyJWK | None:
        return self.key


def counting_verifier(issuer: DevIssuer) -> tuple[TokenVerifier, CountingKeys]:
    keys = CountingKeys(issuer)
    verifier = TokenVerifier(
        keys,  # type: ignore[arg-type]
        issuer=DEV_ISSUER,
        audience=DEFAULT_AUDIENCE,
        algorithms=["ES256"],
        leeway_seconds=30,
    )
    check = verifier._claims

    def counted(*args: Any) -> dict[str, Any]:
        keys.signature_checks += 1
        return check(*args)

    verifier._claims = counted  # type: ignore[method-assign]
    return verifier, keys


async def test_a_verified_token_is_remembered_until_it_expires_and_a_bad_one_never(
    issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier, keys = counting_verifier(issuer)
    token = jwt.encode(claims(), issuer.private_key, algorithm="ES256", headers={"kid": issuer.kid})

    first, second = await verifier.verify(token), await verifier.verify(token)

    assert first == second and first.subject == "rep-dana"
    assert keys.signature_checks == 1  # the second request did not check the signature again
    # Past its lifetime in the cache (or the token's expiry) it is checked again.
    clock = time.time() + auth.VERIFIED_TTL_SECONDS + 1
    monkeypatch.setattr(auth.time, "time", lambda: clock)
    await verifier.verify(token)
    assert keys.signature_checks == 2
    # The issuer withdrew the key: the remembered token is refused at once.
    keys.key = None
    with pytest.raises(auth.AuthError, match="unknown key"):
        await verifier.verify(token)
    # A token that fails a check is never remembered: refused every time.
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(auth.AuthError):
            await verifier.verify(tampered)
    assert tampered not in verifier._verified


async def test_the_verified_token_cache_is_bounded(issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_CACHE_SIZE", 3)
    verifier, _ = counting_verifier(issuer)
    tokens = [
        jwt.encode(claims(sub=f"rep-{i}"), issuer.private_key, algorithm="ES256", headers={"kid": issuer.kid})
        for i in range(5)
    ]
    for token in tokens:
        await verifier.verify(token)

    assert list(verifier._verified) == tokens[-3:]
