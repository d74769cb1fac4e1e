"""The development issuer's sign-in (crm_gateway.platform.dev_oidc) as the web console and a browser
use it: discovery, the sign-in page in he/fa/en, authorization code + PKCE, and what it refuses."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator, Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from crm_gateway.app import create_app
from crm_gateway.platform.dev_oidc import AuthorizationCodes, Grant
from crm_gateway.settings import GatewaySettings
from crm_kit.dev_issuer import DEMO_USERS, DEV_ISSUER

from .conftest import running_gateway

pytestmark = pytest.mark.unit

CLIENT_ID = "crm-console"
REDIRECT_URI = "http://localhost:8081/callback"
OTHER_REDIRECT_URI = "http://127.0.0.1:8081/callback"
# No backend is called: a lazily connecting channel to nowhere is enough.
NOWHERE = "127.0.0.1:1"


def pkce() -> tuple[str, str]:
    """A code verifier and its S256 challenge, computed here as a client does (RFC 7636 §4.1-4.2)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization_params(challenge: str, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "state": "state-" + secrets.token_hex(4),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {name: value for name, value in params.items() if value is not None}


class Page(HTMLParser):
    """The parts of a page a browser acts on: the root's lang/dir, forms, fields, buttons, styles."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.root: dict[str, str | None] = {}
        self.forms: list[dict[str, str | None]] = []
        self.hidden: dict[str, str] = {}
        self.buttons: list[dict[str, str | None]] = []
        self.styles: list[str] = []
        self.scripts = 0
        self.style_attributes = 0
        self._in_style = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.style_attributes += "style" in attributes
        if tag == "html":
            self.root = attributes
        elif tag == "form":
            self.forms.append(attributes)
        elif tag == "input" and attributes.get("type") == "hidden":
            self.hidden[attributes["name"] or ""] = attributes.get("value") or ""
        elif tag == "button":
            self.buttons.append(attributes)
        elif tag == "script":
            self.scripts += 1
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


@pytest.fixture
def dev_app(settings_for: Callable[..., GatewaySettings]) -> Any:
    return create_app(settings_for(NOWHERE, public_base_url="http://localhost:8080"))


@pytest.fixture
async def http(dev_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client without a token; it does not follow redirects, so each one is seen."""
    async with running_gateway(dev_app, headers={}) as client:
        yield client


async def sign_in(http: httpx.AsyncClient, challenge: str, role: str = "sales_rep", **overrides: str) -> str:
    """The page, then its form posted with one user's button: the code the redirect carries."""
    params = authorization_params(challenge, **overrides)
    page = Page((await http.get("/oauth/authorize", params=params)).text)
    response = await http.post("/oauth/authorize", data={**page.hidden, "role": role})
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == params["redirect_uri"]
    query = parse_qs(location.query)
    assert query["state"] == [params["state"]]
    [code] = query["code"]
    return code


async def redeem(http: httpx.AsyncClient, code: str, verifier: str, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT_ID,
        "code_verifier": verifier,
        **overrides,
    }
    return await http.post("/oauth/token", data=form)


def token_error(response: httpx.Response) -> str:
    assert response.status_code == 400
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error_description"]
    error: str = body["error"]
    return error


# ---------------------------------------------------------------- discovery


async def test_the_discovery_document_names_absolute_endpoints(http: httpx.AsyncClient) -> None:
    response = await http.get("/.well-known/openid-configuration")

    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == DEV_ISSUER
    assert document["authorization_endpoint"] == "http://localhost:8080/oauth/authorize"
    assert document["token_endpoint"] == "http://localhost:8080/oauth/token"
    assert document["jwks_uri"] == "http://localhost:8080/.well-known/jwks.json"
    assert document["response_types_supported"] == ["code"]
    assert document["grant_types_supported"] == ["authorization_code"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["token_endpoint_auth_methods_supported"] == ["none"]
    assert document["subject_types_supported"] == ["public"]
    assert document["id_token_signing_alg_values_supported"] == ["ES256"]


# ---------------------------------------------------------------- the sign-in page


@pytest.mark.parametrize(
    ("ui_locales", "lang", "direction", "title"),
    [
        (None, "he", "rtl", "כניסת פיתוח"),
        ("he-IL", "he", "rtl", "כניסת פיתוח"),
        ("fa-IR he", "fa", "rtl", "ورود توسعه"),
        ("de en-US", "en", "ltr", "Development sign-in"),
    ],
)
async def test_the_page_lists_every_demo_user_in_the_asked_language(
    http: httpx.AsyncClient, ui_locales: str | None, lang: str, direction: str, title: str
) -> None:
    _, challenge = pkce()
    params = authorization_params(challenge, ui_locales=ui_locales, nonce="n-1")

    response = await http.get("/oauth/authorize", params=params)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = Page(response.text)
    assert (page.root["lang"], page.root["dir"]) == (lang, direction)
    assert f"<title>{title}</title>" in response.text
    [form] = page.forms
    assert form["method"] == "post"
    # The whole request rides along, so the POST can check it all again.
    assert page.hidden == {**params, "ui_locales": lang}
    assert [button["value"] for button in page.buttons] == list(DEMO_USERS)
    for button in page.buttons:
        user = DEMO_USERS[button["value"] or ""]
        assert button["type"] == "submit" and button["name"] == "role"
        label = button["aria-label"] or ""
        assert user.subject in label and user.team_id in label and (button["value"] or "") in label


async def test_the_page_works_under_its_own_content_security_policy(http: httpx.AsyncClient) -> None:
    _, challenge = pkce()
    response = await http.get("/oauth/authorize", params=authorization_params(challenge))

    page = Page(response.text)
    csp = response.headers["content-security-policy"]
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    [style] = page.styles
    style_hash = "sha256-" + base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert directives["default-src"] == "'none'"
    assert directives["style-src"] == f"'{style_hash}'"  # the one <style>, by hash; nothing inline else
    assert directives["form-action"] == "'self' http://localhost:8081"  # the form, and where it redirects
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert (page.scripts, page.style_attributes) == (0, 0)
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


# ---------------------------------------------------------------- the whole flow


async def test_each_demo_user_signs_in_and_the_tokens_verify_against_the_jwks(http: httpx.AsyncClient) -> None:
    [key] = (await http.get("/.well-known/jwks.json")).json()["keys"]
    public_key = jwt.PyJWK(key).key

    for role, user in DEMO_USERS.items():
        verifier, challenge = pkce()
        code = await sign_in(http, challenge, role, nonce=f"nonce-{role}")
        response = await redeem(http, code, verifier)

        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, "openid")
        access = jwt.decode(body["access_token"], public_key, algorithms=["ES256"], audience="crm-api")
        assert (access["iss"], access["sub"], access["roles"]) == (DEV_ISSUER, user.subject, [role])
        assert access["exp"] - access["iat"] == 3600
        assert access.get("team_id", "") == user.team_id
        identity = jwt.decode(body["id_token"], public_key, algorithms=["ES256"], audience=CLIENT_ID)
        assert (identity["iss"], identity["sub"], identity["roles"]) == (DEV_ISSUER, user.subject, [role])
        assert identity["name"] and identity["nonce"] == f"nonce-{role}"
        assert identity["exp"] > identity["iat"]
        # And the gateway itself takes the access token (and not the ID token, meant for the console).
        me = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200
        assert (me.json()["subject"], me.json()["roles"]) == (user.subject, [role])
        refused = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {body['id_token']}"})
        assert refused.status_code == 401


async def test_the_token_lifetime_is_the_setting(settings_for: Callable[..., GatewaySettings]) -> None:
    app = create_app(settings_for(NOWHERE, auth_dev_token_ttl_seconds=600))
    async with running_gateway(app, headers={}) as http:
        verifier, challenge = pkce()
        body = (await redeem(http, await sign_in(http, challenge), verifier)).json()

    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert body["expires_in"] == 600 == access["exp"] - access["iat"]


# ---------------------------------------------------------------- codes: single use, bound, short-lived


async def test_a_wrong_verifier_is_invalid_grant_and_spends_the_code(http: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    code = await sign_in(http, challenge)

    wrong = await redeem(http, code, pkce()[0])
    right_but_late = await redeem(http, code, verifier)

    assert token_error(wrong) == "invalid_grant"
    assert token_error(right_but_late) == "invalid_grant"


async def test_a_code_is_used_once(http: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    code = await sign_in(http, challenge)

    first = await redeem(http, code, verifier)
    again = await redeem(http, code, verifier)

    assert first.status_code == 200
    assert token_error(again) == "invalid_grant"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"redirect_uri": OTHER_REDIRECT_URI}, "invalid_grant"),  # registered, but not the code's
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"code_verifier": "short"}, "invalid_request"),
    ],
    ids=["other redirect_uri", "unknown client", "malformed verifier"],
)
async def test_a_code_is_bound_to_its_client_and_redirect_uri(
    http: httpx.AsyncClient, overrides: dict[str, str], error: str
) -> None:
    verifier, challenge = pkce()
    code = await sign_in(http, challenge)

    refused = await redeem(http, code, verifier, **overrides)
    after = await redeem(http, code, verifier)

    assert token_error(refused) == error
    assert token_error(after) == "invalid_grant"  # spent by the failed try


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_code_expires_after_60_seconds(dev_app: Any, http: httpx.AsyncClient) -> None:
    clock = Clock()
    dev_app.state.dev_authorization_codes = AuthorizationCodes(clock=clock)
    verifier, challenge = pkce()
    in_time = await sign_in(http, challenge)
    late = await sign_in(http, challenge)

    clock.now += 59
    accepted = await redeem(http, in_time, verifier)
    clock.now += 1
    expired = await redeem(http, late, verifier)

    assert accepted.status_code == 200
    assert token_error(expired) == "invalid_grant"


async def test_the_pending_codes_stay_bounded(dev_app: Any, http: httpx.AsyncClient) -> None:
    dev_app.state.dev_authorization_codes = store = AuthorizationCodes(max_pending=3)
    pairs = [pkce() for _ in range(5)]
    codes = [await sign_in(http, challenge) for _, challenge in pairs]

    assert len(store) == 3
    for (verifier, _), code in list(zip(pairs, codes, strict=True))[:2]:
        assert token_error(await redeem(http, code, verifier)) == "invalid_grant"  # the oldest went first
    for (verifier, _), code in list(zip(pairs, codes, strict=True))[2:]:
        assert (await redeem(http, code, verifier)).status_code == 200
    assert len(store) == 0


def test_the_store_drops_expired_codes_before_it_evicts_live_ones() -> None:
    clock = Clock()
    store = AuthorizationCodes(ttl_seconds=60, max_pending=3, clock=clock)
    grant = Grant(CLIENT_ID, REDIRECT_URI, pkce()[1], "admin")
    stale = [store.issue(grant) for _ in range(2)]
    clock.now += 30
    live = store.issue(grant)
    clock.now += 30  # the first two have expired, the third has 30 s left

    fresh = [store.issue(grant) for _ in range(2)]

    assert len(store) == 3
    assert store.redeem(live) == grant
    assert all(store.redeem(code) == grant for code in fresh)
    assert all(store.redeem(code) is None for code in stale)


# ---------------------------------------------------------------- what is refused


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "evil-app", "redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": REDIRECT_URI + "/../../evil"},
        {"redirect_uri": REDIRECT_URI + "?next=https://evil.example"},
        {"client_id": None},
        {"redirect_uri": None},
    ],
    ids=["unknown client", "unlisted redirect", "path tricks", "extra query", "no client", "no redirect_uri"],
)
async def test_an_unvetted_client_or_redirect_uri_gets_a_400_page_never_a_redirect(
    http: httpx.AsyncClient, overrides: dict[str, str | None]
) -> None:
    params = authorization_params(pkce()[1], **overrides)

    page = await http.get("/oauth/authorize", params=params)
    posted = await http.post("/oauth/authorize", data={**params, "role": "admin"})

    for response in (page, posted):
        assert response.status_code == 400
        assert "location" not in response.headers
        assert response.headers["content-type"].startswith("text/html")
        assert Page(response.text).root["dir"] == "rtl"
        assert "form-action 'none'" in response.headers["content-security-policy"]


async def test_a_repeated_redirect_uri_is_not_vetted(http: httpx.AsyncClient) -> None:
    query = httpx.QueryParams(authorization_params(pkce()[1])).add("redirect_uri", OTHER_REDIRECT_URI)

    response = await http.get("/oauth/authorize", params=query)

    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"state": None}, "invalid_request"),
    ],
)
async def test_other_bad_parameters_go_back_to_the_client_with_an_error(
    http: httpx.AsyncClient, overrides: dict[str, str | None], error: str
) -> None:
    params = authorization_params(pkce()[1], **overrides)

    page = await http.get("/oauth/authorize", params=params)
    posted = await http.post("/oauth/authorize", data={**params, "role": "admin"})

    for response, status in ((page, 302), (posted, 303)):
        assert response.status_code == status
        location = urlsplit(response.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
        query = parse_qs(location.query)
        assert query["error"] == [error]
        assert "code" not in query
        assert query.get("state") == ([params["state"]] if "state" in params else None)


async def test_a_role_that_is_no_demo_user_gets_no_code(http: httpx.AsyncClient) -> None:
    params = authorization_params(pkce()[1])

    response = await http.post("/oauth/authorize", data={**params, "role": "superuser"})

    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"] and "code" not in query


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "client_credentials", "client_id": CLIENT_ID}, "unsupported_grant_type"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"code": "x"}, "invalid_request"),
        ({"grant_type": "authorization_code"}, "invalid_request"),
        ({"grant_type": "authorization_code", "code": "never-issued"}, "invalid_grant"),
    ],
)
async def test_token_requests_that_are_not_a_code_exchange_are_refused(
    http: httpx.AsyncClient, form: dict[str, str], error: str
) -> None:
    assert token_error(await http.post("/oauth/token", data=form)) == error


async def test_a_token_request_must_be_a_form(http: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    code = await sign_in(http, challenge)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "client_id": CLIENT_ID}

    as_json = await http.post("/oauth/token", json={**form, "code_verifier": verifier})

    assert token_error(as_json) == "invalid_request"
    assert (await redeem(http, code, verifier)).status_code == 200  # a malformed request spends nothing


# ---------------------------------------------------------------- only with the dev issuer


async def test_the_routes_do_not_exist_without_the_dev_issuer(settings_for: Callable[..., GatewaySettings]) -> None:
    app = create_app(settings_for(NOWHERE, auth_dev_issuer_key_file=""))
    async with running_gateway(app, headers={}) as http:
        answers = [
            (await http.get("/.well-known/openid-configuration")).status_code,
            (await http.get("/oauth/authorize", params=authorization_params(pkce()[1]))).status_code,
            (await http.post("/oauth/authorize", data={"role": "admin"})).status_code,
            (await http.post("/oauth/token", data={"grant_type": "authorization_code"})).status_code,
        ]

    assert answers == [404] * 4


async def test_the_routes_are_public_and_outside_the_openapi_document(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()

    assert not [path for path in document["paths"] if re.match(r"/oauth/|/\.well-known/openid", path)]
    assert (await http.get("/.well-known/openid-configuration")).status_code == 200  # no token
    assert (await http.get("/api/v1/me")).status_code == 401  # while the API needs one


@pytest.mark.parametrize("uri", ["http://localhost:8081/callback#frag", "localhost:8081/callback", "/callback"])
def test_a_client_redirect_uri_must_be_absolute_http_without_fragment(
    settings_for: Callable[..., GatewaySettings], uri: str
) -> None:
    with pytest.raises(ValueError, match="redirect URI"):
        settings_for(NOWHERE, auth_dev_clients={CLIENT_ID: [uri]})
