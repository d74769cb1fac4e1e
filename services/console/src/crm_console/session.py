"""The signed-in session, sealed in a cookie: AES-256-GCM, so the browser holds the token but can
neither read nor change it, and no script can (HttpOnly). Nothing is kept server-side, so any
console replica serves any user and a restart signs nobody out.

The sealed value carries its own expiry (the token's, capped by the session lifetime); a cookie
sealed under another key, altered, or past its expiry reads as no session.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SESSION_COOKIE = "crm_session"
LOGIN_COOKIE = "crm_login"  # the PKCE verifier and state between /login and /callback
LOCALE_COOKIE = "crm_lang"


@dataclass(frozen=True)
class Session:
    token: str
    subject: str
    name: str
    roles: tuple[str, ...]
    expires_at: float
    csrf: str

    def has_any(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


class Sealer:
    """Seals and opens small JSON values with one AES-256-GCM key; the purpose is bound as AAD."""

    def __init__(self, key_b64: str) -> None:
        try:
            key = base64.b64decode(key_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("the session key must be base64") from exc
        if len(key) != 32:
            raise ValueError(f"the session key must be 32 bytes (base64), not {len(key)}")
        self._aead = AESGCM(key)

    def seal(self, purpose: str, value: dict[str, Any], expires_at: float) -> str:
        nonce = os.urandom(12)
        plain = json.dumps({"v": value, "exp": expires_at}, separators=(",", ":")).encode()
        sealed = self._aead.encrypt(nonce, plain, purpose.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, purpose: str, cookie: str | None) -> dict[str, Any] | None:
        if not cookie or len(cookie) > 8192:
            return None
        try:
            raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            plain = self._aead.decrypt(raw[:12], raw[12:], purpose.encode())
            data = json.loads(plain)
        except (binascii.Error, ValueError, InvalidTag):
            return None
        if not isinstance(data, dict) or float(data.get("exp", 0)) <= time.time():
            return None
        value = data.get("v")
        return value if isinstance(value, dict) else None

    def seal_session(self, session: Session) -> str:
        return self.seal(SESSION_COOKIE, {**asdict(session), "roles": list(session.roles)}, session.expires_at)

    def open_session(self, cookie: str | None) -> Session | None:
        value = self.open(SESSION_COOKIE, cookie)
        if value is None:
            return None
        try:
            return Session(
                token=str(value["token"]),
                subject=str(value["subject"]),
                name=str(value["name"]),
                roles=tuple(str(r) for r in value["roles"]),
                expires_at=float(value["expires_at"]),
                csrf=str(value["csrf"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
