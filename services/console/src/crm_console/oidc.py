"""OIDC authorization code + PKCE (RFC 7636, S256) against the configured issuer.

The console is the OAuth client: it creates the verifier and state, sends the browser to the
issuer's authorization endpoint, and exchanges the returned code for the access token on the
server side, so the token never passes through page scripts (it lands in the sealed cookie).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

DISCOVERY_TTL_SECONDS = 300.0


@dataclass(frozen=True)
class LoginStart:
    url: str
    state: str
    verifier: str


class OidcClient:
    def __init__(
        self,
        issuer_url: str,
        browser_issuer_url: str,
        client_id: str,
        redirect_uri: str,
        *,
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._issuer = issuer_url.rstrip("/")
        self._browser_issuer = browser_issuer_url.rstrip("/")
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self._http = httpx.AsyncClient(timeout=timeout_seconds, transport=transport)
        self._discovery: tuple[float, dict[str, Any]] | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def discovery(self) -> dict[str, Any]:
        """The issuer's discovery document, read at most once per DISCOVERY_TTL_SECONDS."""
        now = time.monotonic()
        if self._discovery is None or now - self._discovery[0] > DISCOVERY_TTL_SECONDS:
            response = await self._http.get(f"{self._issuer}/.well-known/openid-configuration")
            response.raise_for_status()
            self._discovery = (now, response.json())
        return self._discovery[1]

    def _for_browser(self, url: str) -> str:
        """The endpoint as the browser must reach it (the server may see the issuer elsewhere)."""
        return _rebase(url, self._issuer, self._browser_issuer)

    def _for_server(self, url: str) -> str:
        return _rebase(url, self._browser_issuer, self._issuer)

    async def start(self, locale: str) -> LoginStart:
        doc = await self.discovery()
        verifier = secrets.token_urlsafe(48)  # 64 characters of the RFC 7636 alphabet
        state = secrets.token_urlsafe(24)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": "openid",
                "state": state,
                "code_challenge": challenge(verifier),
                "code_challenge_method": "S256",
                "ui_locales": locale,
            }
        )
        return LoginStart(f"{self._for_browser(doc['authorization_endpoint'])}?{query}", state, verifier)

    async def exchange(self, code: str, verifier: str) -> dict[str, Any]:
        """The token response for code; raises httpx.HTTPStatusError when the issuer refuses it."""
        doc = await self.discovery()
        response = await self._http.post(
            self._for_server(doc["token_endpoint"]),
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "client_id": self.client_id,
                "code_verifier": verifier,
            },
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


def _rebase(url: str, base: str, onto: str) -> str:
    """url with the scheme and host of onto when it lies under base; else url unchanged."""
    if not url.startswith(base):
        return url
    target, parts = urlsplit(onto), urlsplit(url)
    return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))


def challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
