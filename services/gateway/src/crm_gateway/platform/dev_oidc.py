"""The development issuer's sign-in: OIDC authorization code + PKCE, for the web console.

Only when the dev issuer is on (`auth_dev_issuer_key_file`, which production settings refuse);
otherwise these routes do not exist. There is no password: whoever reaches the page picks a demo
user (`crm_kit.dev_issuer.DEMO_USERS`) and gets that user's token — what `crm-admin token` already
gives whoever holds the key file. That is the point in development, and why production refuses it.

What it still gets right, because the console's sign-in code is the same against a real issuer:

- a code goes only to a redirect URI registered for its client, compared as an exact string
  (`auth_dev_clients`). An unknown client or URI gets an error page, never a redirect (the issuer
  would be an open redirector); other errors go back to the client (RFC 6749 §4.1.2.1);
- PKCE with S256 only (RFC 7636): the code is bound to the challenge, the client and the URI;
- a code is 32 random bytes, lives 60 s and is spent by its first redemption, a failed one too,
  so nobody can try verifiers against it.

Codes live in this process' memory (`AuthorizationCodes`): `make run` has one gateway. Behind
several replicas the token request could reach another one; the answer there is a real issuer, not
a shared store for a development tool. At most `max_pending` codes are held (oldest out), so asking
for codes cannot grow the gateway's memory.

The pages (he, fa, en) and the CSP they carry are crm_gateway.platform.dev_sign_in_pages'.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from crm_gateway.platform import dev_sign_in_pages as pages
from crm_gateway.platform.dev_sign_in_pages import NO_STORE, TEXTS
from crm_gateway.settings import GatewaySettings
from crm_kit.dev_issuer import ALGORITHM, DEMO_USERS, DevIssuer

CODE_TTL_SECONDS = 60.0
MAX_PENDING_CODES = 10_000
# BASE64URL(SHA-256(verifier)) is always 43 characters; a verifier is 43-128 unreserved ones.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
# state and nonce come back in the redirect and the ID token: bounded, like any input.
MAX_STATE_CHARS = 1024
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Grant:
    """What a code stands for: who signed in (their role), for which client, sent where, bound to
    which PKCE challenge."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    role: str
    nonce: str = ""


class AuthorizationCodes:
    """Pending authorization codes of this process: each lives `ttl_seconds`, is redeemed at most
    once, and at most `max_pending` are held (a new one evicts the oldest)."""

    def __init__(
        self,
        ttl_seconds: float = CODE_TTL_SECONDS,
        max_pending: int = MAX_PENDING_CODES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_pending = max_pending
        self.clock = clock
        # In issue order, which with one TTL is also expiry order.
        self._pending: OrderedDict[str, tuple[Grant, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def issue(self, grant: Grant) -> str:
        now = self.clock()
        while self._pending and next(iter(self._pending.values()))[1] <= now:
            self._pending.popitem(last=False)
        while len(self._pending) >= self.max_pending:
            self._pending.popitem(last=False)
        code = secrets.token_urlsafe(32)
        self._pending[code] = (grant, now + self.ttl_seconds)
        return code

    def redeem(self, code: str) -> Grant | None:
        """The code's grant, or None when it is unknown, spent or expired. Either way it is gone."""
        entry = self._pending.pop(code, None)
        if entry is None or entry[1] <= self.clock():
            return None
        return entry[0]


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))), unpadded."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


# ---------------------------------------------------------------- the authorization request


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    state: str
    code_challenge: str
    nonce: str


@dataclass(frozen=True)
class UnvettedClient:
    """The client or its redirect URI is not registered: said on a page, never redirected."""

    reason: str


@dataclass(frozen=True)
class ClientError:
    """An error the client hears about at its (registered) redirect URI."""

    redirect_uri: str
    state: str
    error: str
    description: str


def _repeated(params: Mapping[str, list[str]]) -> str:
    """RFC 6749 §3.1: no parameter may be sent twice; the names of those that were."""
    return ", ".join(sorted(name for name, values in params.items() if len(values) > 1))


def read_authorization_request(
    params: Mapping[str, list[str]], clients: Mapping[str, list[str]]
) -> AuthorizationRequest | UnvettedClient | ClientError:
    """Check an authorization request (query or form): the client and its redirect URI first, since
    only then may an error be sent back there; then the rest (RFC 6749 §4.1.1, RFC 7636 §4.3)."""
    client_ids, redirect_uris = params.get("client_id", []), params.get("redirect_uri", [])
    if len(client_ids) != 1 or client_ids[0] not in clients:
        return UnvettedClient("client_id is missing, repeated or not a registered client.")
    if len(redirect_uris) != 1 or redirect_uris[0] not in clients[client_ids[0]]:
        return UnvettedClient("redirect_uri is missing, repeated or not registered for this client.")
    states = params.get("state", [])
    state = states[0] if len(states) == 1 and len(states[0]) <= MAX_STATE_CHARS else ""
    problem = _request_problem(params, state)
    if problem is not None:
        error, description = problem
        return ClientError(redirect_uris[0], state, error, description)
    value = {name: values[0] for name, values in params.items()}
    return AuthorizationRequest(client_ids[0], redirect_uris[0], state, value["code_challenge"], value.get("nonce", ""))


def _request_problem(params: Mapping[str, list[str]], state: str) -> tuple[str, str] | None:
    """(error, description) for an authorization request of a vetted client, or None when it is good."""
    if repeated := _repeated(params):
        return "invalid_request", f"Parameters may not be repeated: {repeated}."
    value = {name: values[0] for name, values in params.items()}
    response_type = value.get("response_type", "")
    if response_type != "code":
        if response_type:
            return "unsupported_response_type", "Only response_type=code is supported."
        return "invalid_request", "response_type is required."
    if not state:
        return "invalid_request", f"state is required (at most {MAX_STATE_CHARS} characters)."
    if value.get("code_challenge_method") != "S256":
        return "invalid_request", "code_challenge_method must be S256."
    if not _S256_CHALLENGE.fullmatch(value.get("code_challenge", "")):
        return "invalid_request", "code_challenge must be the 43-character BASE64URL(SHA256(code_verifier))."
    if len(value.get("nonce", "")) > MAX_STATE_CHARS:
        return "invalid_request", f"nonce may have at most {MAX_STATE_CHARS} characters."
    return None


def redirect_with(redirect_uri: str, params: dict[str, str], status_code: int) -> RedirectResponse:
    """To the client's redirect URI, params added to any query it already has (empty ones left out)."""
    query = urlencode({name: value for name, value in params.items() if value})
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(redirect_uri + separator + query, status_code=status_code, headers=NO_STORE)


# ---------------------------------------------------------------- the token request


@dataclass(frozen=True)
class TokenError:
    """RFC 6749 §5.2: invalid_request, invalid_client, invalid_grant or unsupported_grant_type."""

    error: str
    description: str

    def response(self) -> JSONResponse:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=400, headers=NO_STORE)


def redeem_token_request(
    params: Mapping[str, list[str]], codes: AuthorizationCodes, clients: Mapping[str, list[str]]
) -> Grant | TokenError:
    """The grant of a token request's code, once every check passed (RFC 6749 §4.1.3, RFC 7636
    §4.6). The code is spent as soon as it is looked up, before any other check: one code, one try."""
    if not params:
        return TokenError("invalid_request", f"Send the parameters as {FORM}.")
    if repeated := _repeated(params):
        return TokenError("invalid_request", f"Parameters may not be repeated: {repeated}.")
    value = {name: values[0] for name, values in params.items()}
    if value.get("grant_type") != "authorization_code":
        if value.get("grant_type"):
            return TokenError("unsupported_grant_type", "Only grant_type=authorization_code is supported.")
        return TokenError("invalid_request", "grant_type is required.")
    if not value.get("code"):
        return TokenError("invalid_request", "code is required.")
    grant = codes.redeem(value["code"])
    if grant is None:
        return TokenError("invalid_grant", "The code is unknown, expired or already used.")
    return _grant_problem(value, grant, clients) or grant


def _grant_problem(value: Mapping[str, str], grant: Grant, clients: Mapping[str, list[str]]) -> TokenError | None:
    """Why a redeemed code is not the caller's to use, or None: same client and redirect URI, and
    the verifier its challenge was made from."""
    if value.get("client_id", "") not in clients:
        return TokenError("invalid_client", "client_id is missing or not a registered client.")
    if value["client_id"] != grant.client_id or value.get("redirect_uri") != grant.redirect_uri:
        return TokenError("invalid_grant", "The code was issued to another client or redirect_uri.")
    verifier = value.get("code_verifier", "")
    if not _VERIFIER.fullmatch(verifier):
        return TokenError("invalid_request", "code_verifier must be 43-128 characters of [A-Za-z0-9-._~].")
    if not hmac.compare_digest(s256(verifier), grant.code_challenge):
        return TokenError("invalid_grant", "code_verifier does not match the code_challenge.")
    return None


# ---------------------------------------------------------------- routes


async def _params(request: Request, *, form: bool) -> dict[str, list[str]]:
    """Every parameter with all its values (a repeated one is an error): the query's, or the body's
    when it is a urlencoded form (any other body has none)."""
    source: Any = request.query_params
    if form:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
            return {}
        source = await request.form()
    return {name: [v for v in source.getlist(name) if isinstance(v, str)] for name in source.keys()}


class DevSignIn:
    """The development issuer's OIDC endpoints. The pending codes are `app.state.dev_authorization_codes`,
    read per request, so a test can put in a store with its own clock or bound."""

    def __init__(self, app: FastAPI, settings: GatewaySettings, issuer: DevIssuer) -> None:
        self.app = app
        self.settings = settings
        self.issuer = issuer
        self.clients = settings.auth_dev_clients
        base = settings.public_base_url.rstrip("/")
        self.discovery = {
            "issuer": settings.auth_issuer,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "scopes_supported": ["openid"],
            "ui_locales_supported": list(TEXTS),
        }

    @property
    def codes(self) -> AuthorizationCodes:
        codes: AuthorizationCodes = self.app.state.dev_authorization_codes
        return codes

    async def openid_configuration(self) -> JSONResponse:
        return JSONResponse(self.discovery)

    async def sign_in_page(self, request: Request) -> Response:
        """GET /oauth/authorize: the demo users to choose from, or why not (page or redirect)."""
        params = await _params(request, form=False)
        found = read_authorization_request(params, self.clients)
        if not isinstance(found, AuthorizationRequest):
            return self._refusal(found, params, 302)
        hidden = {
            "response_type": "code",
            "client_id": found.client_id,
            "redirect_uri": found.redirect_uri,
            "state": found.state,
            "code_challenge": found.code_challenge,
            "code_challenge_method": "S256",
            "nonce": found.nonce,
            "ui_locales": _locale(params),
        }
        target = urlsplit(found.redirect_uri)
        return pages.sign_in_page(hidden, found.client_id, f"{target.scheme}://{target.netloc}", _locale(params))

    async def sign_in(self, request: Request) -> Response:
        """POST /oauth/authorize: the request checked again, then a code for the chosen user (303)."""
        params = await _params(request, form=True)
        found = read_authorization_request(params, self.clients)
        if not isinstance(found, AuthorizationRequest):
            return self._refusal(found, params, 303)
        role = params.get("role", [""])[0]
        if role not in DEMO_USERS:
            return self._refusal(
                ClientError(found.redirect_uri, found.state, "invalid_request", "Unknown role."), {}, 303
            )
        code = self.codes.issue(Grant(found.client_id, found.redirect_uri, found.code_challenge, role, found.nonce))
        return redirect_with(found.redirect_uri, {"code": code, "state": found.state}, 303)

    async def token(self, request: Request) -> JSONResponse:
        """POST /oauth/token: a code and its verifier for the demo user's access and ID tokens."""
        grant = redeem_token_request(await _params(request, form=True), self.codes, self.clients)
        if isinstance(grant, TokenError):
            return grant.response()
        ttl = self.settings.auth_dev_token_ttl_seconds
        access_token = self.issuer.mint_demo(grant.role, ttl_seconds=ttl, audience=self.settings.auth_audience)
        id_token = self.issuer.mint_demo_id_token(grant.role, grant.client_id, ttl_seconds=ttl, nonce=grant.nonce)
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "id_token": id_token,
            "scope": "openid",
        }
        return JSONResponse(body, headers=NO_STORE)

    @staticmethod
    def _refusal(found: UnvettedClient | ClientError, params: Mapping[str, list[str]], status_code: int) -> Response:
        if isinstance(found, UnvettedClient):
            return pages.error_page(found.reason, _locale(params))
        refused = {"error": found.error, "error_description": found.description, "state": found.state}
        return redirect_with(found.redirect_uri, refused, status_code)


def _locale(params: Mapping[str, list[str]]) -> str:
    return pages.choose_locale((params.get("ui_locales") or [""])[0])


def install_dev_oidc(app: FastAPI, settings: GatewaySettings, issuer: DevIssuer) -> None:
    """The discovery document, the sign-in page and the token endpoint of the development issuer.
    Unauthenticated and outside the OpenAPI document: they are the issuer's protocol, not the API."""
    app.state.dev_authorization_codes = AuthorizationCodes()
    endpoints = DevSignIn(app, settings, issuer)
    app.get("/.well-known/openid-configuration", include_in_schema=False, name="dev_openid_configuration")(
        endpoints.openid_configuration
    )
    app.get("/oauth/authorize", include_in_schema=False, name="dev_sign_in_page")(endpoints.sign_in_page)
    app.post("/oauth/authorize", include_in_schema=False, name="dev_sign_in")(endpoints.sign_in)
    app.post("/oauth/token", include_in_schema=False, name="dev_token")(endpoints.token)
