"""The development token issuer: an ES256 key on disk, its JWKS, and tokens for demo users.

Only for `make run` and tests. The gateway verifies tokens from any OIDC issuer through its JWKS
URL; in development it serves this issuer's JWKS itself and its sign-in for the web console (OIDC
authorization code + PKCE, crm_gateway.platform.dev_oidc), and `crm-admin token` mints tokens with
the key file. Production settings refuse it (the gateway checks `DEV_ISSUER`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

DEV_ISSUER = "urn:crm:dev-issuer"
DEFAULT_AUDIENCE = "crm-api"
ALGORITHM = "ES256"


@dataclass(frozen=True)
class DemoUser:
    subject: str
    team_id: str = ""


# One demo user per role; the reps and teams exist in the leads service's seed data.
DEMO_USERS: dict[str, DemoUser] = {
    "admin": DemoUser("admin-avi"),
    "sales_manager": DemoUser("manager-media", "team-media"),
    "sales_rep": DemoUser("rep-dana", "team-media"),
    "orders_clerk": DemoUser("clerk-rivka"),
    "service_agent": DemoUser("agent-yosef"),
    "marketing": DemoUser("marketer-shira"),
}


class DevIssuer:
    """Signs tokens with one EC P-256 key; `kid` is the key's RFC 7638 thumbprint."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, issuer: str = DEV_ISSUER) -> None:
        self.private_key = private_key
        self.issuer = issuer
        public_jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(private_key.public_key()))
        self.kid = _thumbprint(public_jwk)
        self.public_jwk = {**public_jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    @classmethod
    def load_or_create(cls, path: Path, issuer: str = DEV_ISSUER) -> DevIssuer:
        """Read the PEM key at path, creating it (mode 0600) on first use."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path} is not an EC private key")
        return cls(loaded, issuer)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [self.public_jwk]}

    def mint(
        self,
        subject: str,
        roles: Iterable[str],
        *,
        team_id: str = "",
        audience: str = DEFAULT_AUDIENCE,
        ttl_seconds: int = 3600,
        extra: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "jti": uuid.uuid4().hex,
            "roles": sorted(set(roles)),
        }
        if team_id:
            claims["team_id"] = team_id
        claims.update(extra or {})
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def mint_demo(
        self,
        role: str,
        *,
        subject: str = "",
        team_id: str = "",
        ttl_seconds: int = 3600,
        audience: str = DEFAULT_AUDIENCE,
    ) -> str:
        """A token for the demo user of role (or for subject/team_id when given)."""
        user = _demo_user(role)
        return self.mint(
            subject or user.subject,
            [role],
            team_id=team_id or user.team_id,
            audience=audience,
            ttl_seconds=ttl_seconds,
        )

    def mint_demo_id_token(self, role: str, client_id: str, *, ttl_seconds: int = 3600, nonce: str = "") -> str:
        """An OIDC ID token for the demo user of role, addressed to the client that signed them in
        (`aud` = client_id, so it can never pass as an access token for the API), with `name`, the
        roles, and the client's `nonce` when it sent one."""
        user = _demo_user(role)
        extra: dict[str, Any] = {"name": user.subject}
        if nonce:
            extra["nonce"] = nonce
        return self.mint(
            user.subject, [role], team_id=user.team_id, audience=client_id, ttl_seconds=ttl_seconds, extra=extra
        )


def _demo_user(role: str) -> DemoUser:
    if role not in DEMO_USERS:
        raise ValueError(f"unknown role {role!r}; one of: {', '.join(DEMO_USERS)}")
    return DEMO_USERS[role]


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of an EC public key."""
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
