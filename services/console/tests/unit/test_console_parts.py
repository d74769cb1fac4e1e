"""The console's own parts: the sealed session cookie, the spec-driven gateway client, the
languages' formatting, and its pages against a recording fake of the gateway and issuer."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from crm_console import api
from crm_console.i18n import Translator
from crm_console.oidc import challenge
from crm_console.session import SESSION_COOKIE, Sealer
from crm_console.settings import DEV_SESSION_KEY, ConsoleSettings
from crm_console.web import HERE, local_path

from .conftest import CSRF, KEY, console_client, session

pytestmark = pytest.mark.unit


def test_a_sealed_session_opens_only_with_its_key_and_unaltered() -> None:
    sealer = Sealer(KEY)
    cookie = sealer.seal_session(session("sales_rep"))
    opened = sealer.open_session(cookie)
    assert opened is not None and opened.token == "tok" and opened.roles == ("sales_rep",)
    assert "tok" not in cookie  # the token is not readable in the cookie
    assert Sealer(base64.b64encode(os.urandom(32)).decode()).open_session(cookie) is None
    tampered = cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]
    assert sealer.open_session(tampered) is None
    # Sealed for another purpose (the login cookie) it does not open as a session.
    assert sealer.open_session(sealer.seal("crm_login", {"token": "x"}, time.time() + 60)) is None


def test_an_expired_session_reads_as_none() -> None:
    sealer = Sealer(KEY)
    assert sealer.open_session(sealer.seal_session(session("sales_rep", expires_at=time.time() - 1))) is None


def test_the_key_must_be_32_bytes_and_production_refuses_the_dev_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="SESSION_KEY"):
        ConsoleSettings(environment="production", secure_cookies=True, session_key=DEV_SESSION_KEY)
    with pytest.raises(ValueError, match="SECURE_COOKIES"):
        ConsoleSettings(environment="production", session_key=KEY)


def test_the_client_knows_every_operation_it_uses_from_the_spec() -> None:
    ops = api.operations()
    assert ops["shipOrder"].method == "POST"
    assert ops["shipOrder"].path == "/api/v1/orders/{order_id}/ship"
    assert "If-Match" in ops["moveDealStage"].header_params
    # Every operation the pages call exists in the spec (a page calling a renamed one fails here).
    source = "".join(p.read_text() for p in api.SPEC_PATH.parent.glob("*.py"))
    called = set(re.findall(r'\.call\(\s*"(\w+)"', source))
    assert called - set(ops) == set()
    named = set(re.findall(r'"([a-z]+[A-Z][A-Za-z]+)"', source)) & set(ops)
    assert {"listMyLeads", "getLeadRouting", "convertLead", "moveDealStage", "closeDeal", "shipOrder"} <= named


async def test_a_call_with_an_undeclared_or_missing_parameter_is_refused_before_sending() -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    gateway = api.Gateway("http://gw", timeout_seconds=1, transport=httpx.MockTransport(record))
    with pytest.raises(ValueError, match="no query parameter"):
        await gateway.call("listOrders", "t", query={"status": "pending"})
    with pytest.raises(ValueError, match="needs"):
        await gateway.call("getOrder", "t")
    with pytest.raises(KeyError):
        await gateway.call("noSuchOperation", "t")
    assert sent == []


async def test_a_problem_answer_raises_with_its_field_errors() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer t"
        assert request.url.raw_path == b"/api/v1/orders/o%2F1/ship"  # path values are escaped
        problem = {"title": "Unprocessable", "errors": [{"field": "carrier", "detail": "required"}]}
        return httpx.Response(422, json=problem)

    gateway = api.Gateway("http://gw", timeout_seconds=1, transport=httpx.MockTransport(answer))
    with pytest.raises(api.ApiError) as caught:
        await gateway.call("shipOrder", "t", path={"order_id": "o/1"}, body={"carrier": ""})
    assert caught.value.status == 422
    assert caught.value.field_errors == {"carrier": "required"}


def test_persian_shows_jalali_dates_and_persian_digits_hebrew_gregorian() -> None:
    fa, he, en = Translator("fa"), Translator("he"), Translator("en")
    assert (fa.dir, he.dir, en.dir) == ("rtl", "rtl", "ltr")
    assert fa.date("2026-12-06") == "۱۵ آذر ۱۴۰۵"
    assert "2026" in he.date("2026-12-06") and "דצמ" in he.date("2026-12-06")
    assert fa.number(1234567) == "۱٬۲۳۴٬۵۶۷"
    assert "₪" in he.money({"amount_minor": 123456, "currency_code": "ILS"})
    assert fa.duration(-3660) == "-۱:۰۱"
    assert he.duration(-20) == "-0:01" and he.duration(59) == "0:00"
    assert he("sign_in") == "כניסה" and fa("sign_in") == "ورود"


def test_a_shown_moment_or_day_is_a_time_element_with_its_iso_value() -> None:
    fa, he = Translator("fa"), Translator("he")
    # 08:00 UTC is 11:30 in Tehran: the text is Jalali with Persian digits, the attribute ISO.
    assert fa.when("2026-12-06T08:00:00.123456Z") == (
        '<time datetime="2026-12-06T11:30:00+03:30" dir="rtl">۱۵ آذر ۱۴۰۵، ۱۱:۳۰</time>'
    )
    assert fa.day("2026-12-06") == '<time datetime="2026-12-06" dir="rtl">۱۵ آذر ۱۴۰۵</time>'
    assert he.when("2026-12-06T08:00:00Z") == (
        f'<time datetime="2026-12-06T10:00:00+02:00" dir="rtl">{he.datetime("2026-12-06T08:00:00Z")}</time>'
    )
    assert he.day("2026-12-06") == f'<time datetime="2026-12-06" dir="rtl">{he.date("2026-12-06")}</time>'
    assert he.when("") == "" and he.when(None) == "" and he.when("soon") == "" and he.day(None) == ""
    assert he.day("<b>soon</b>") == "&lt;b&gt;soon&lt;/b&gt;"  # no date: shown as it came, escaped
    assert Translator("en").day("2026-12-06") == '<time datetime="2026-12-06" dir="ltr">6 Dec 2026</time>'


def test_templates_show_dates_only_through_time_elements() -> None:
    """t.when()/t.day() wrap a date in <time datetime>; t.datetime()/t.date() give bare text, which
    a template may put only where no element can go (an input's value, an <option>)."""
    templates = HERE / "templates"
    bare = [
        f"{path.name}: {line.strip()}"
        for path in sorted(templates.glob("*.html"))
        for line in path.read_text().splitlines()
        if re.search(r"\{\{ *t\.(date|datetime)\(", line) and not re.search(r"<option|value=\"\{\{ *t\.", line)
    ]
    assert bare == []


def test_only_local_paths_are_followed_after_sign_in() -> None:
    assert local_path("/work?x=1") == "/work?x=1"
    for outside in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)", "work"):
        assert local_path(outside) == "/"


def test_pkce_challenge_is_rfc7636_s256() -> None:
    # BASE64URL(SHA256(verifier)) without padding: 43 characters.
    assert challenge("dBjftJeZ4CVP-mB92K27uhbUWfFHHB4nB6fUnGyXeFM") == "W5KcnuX1rXRMIlb6MeiWwQ31s1bhIJb2XR4PeaSOmMU"


class FakeGateway:
    """The gateway and its development issuer at the true edge of the console: records calls."""

    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []
        self.codes: dict[str, str] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "authorization_endpoint": "http://localhost:8080/oauth/authorize",
                    "token_endpoint": "http://localhost:8080/oauth/token",
                },
            )
        if path == "/oauth/token":
            form = parse_qs(request.content.decode())
            if challenge(form["code_verifier"][0]) != self.codes.get(form["code"][0]):
                return httpx.Response(400, json={"error": "invalid_grant"})
            return httpx.Response(200, json={"access_token": "tok-rep", "expires_in": 3600, "token_type": "Bearer"})
        if request.headers.get("Authorization") != "Bearer tok-rep":
            return httpx.Response(401, json={"title": "Unauthorized"})
        if path == "/api/v1/me":
            return httpx.Response(
                200, json={"subject": "rep-dana", "roles": ["sales_rep"], "team_id": "", "rep_id": ""}
            )
        if path == "/api/v1/my-leads":
            lead = {
                "id": "l1",
                "full_name": "דנה כהן",
                "phone_number": "+972501234567",
                "email": "",
                "source": "radio",
                "status": "assigned",
                "create_time": "2026-12-06T08:00:00Z",
            }
            return httpx.Response(
                200,
                json={
                    "items": [{"lead": lead, "seconds_left": 600, "has_deadline": True, "responded": False}],
                    "next_page_token": "",
                },
            )
        return httpx.Response(404, json={"title": "Not Found"})


async def test_sign_in_with_pkce_then_the_work_list_in_hebrew() -> None:
    fake = FakeGateway()
    async with console_client(fake) as browser:
        first = await browser.get("/work")
        assert first.status_code == 303 and first.headers["location"].startswith("/login?next=")
        login = await browser.get(first.headers["location"])
        authorize = urlsplit(login.headers["location"])
        assert (authorize.netloc, authorize.path) == ("localhost:8080", "/oauth/authorize")
        params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
        assert params["code_challenge_method"] == "S256" and params["client_id"] == "crm-console"
        assert params["redirect_uri"] == "http://localhost:8081/callback"
        fake.codes["c1"] = params["code_challenge"]
        # A callback with another state is refused (no session).
        assert (await browser.get("/callback", params={"code": "c1", "state": "forged"})).status_code == 400
        back = await browser.get("/callback", params={"code": "c1", "state": params["state"]})
        assert back.status_code == 303 and back.headers["location"] == "/work"
        cookie = back.cookies.get(SESSION_COOKIE) or browser.cookies.get(SESSION_COOKIE)
        assert cookie and "tok-rep" not in cookie
        page = await browser.get("/work")
        assert page.status_code == 200
        assert '<html lang="he" dir="rtl">' in page.text
        assert "דנה כהן" in page.text and '<bdi dir="ltr">+972501234567</bdi>' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        token_calls = [c for c in fake.calls if c.url.path == "/api/v1/my-leads"]
        assert token_calls[-1].headers["Authorization"] == "Bearer tok-rep"


async def test_a_form_post_without_the_session_csrf_value_is_refused() -> None:
    fake = FakeGateway()
    async with console_client(fake, "sales_rep", token="tok-rep") as browser:
        refused = await browser.post("/orders/o1/ship", data={"carrier": "UPS", "csrf": "wrong"})
        assert refused.status_code == 403
        assert not [c for c in fake.calls if c.url.path.endswith("/ship")]


def test_the_spec_copy_is_json() -> None:
    assert json.loads(api.SPEC_PATH.read_text())["paths"]


def test_the_menu_keeps_the_top_line_short_and_folds_each_area() -> None:
    from crm_console.web import menu_groups

    grouped = menu_groups(
        [
            ("mgr_team", "/manager/team"),
            ("orders", "/orders"),
            ("audit_log", "/admin/audit"),
            ("work", "/work"),
            ("mgr_targets", "/manager/targets"),
        ]
    )
    assert grouped == [
        ("", [("work", "/work")]),
        ("", [("orders", "/orders")]),
        ("menu_manage", [("mgr_team", "/manager/team"), ("mgr_targets", "/manager/targets")]),
        ("menu_admin", [("audit_log", "/admin/audit")]),
    ]


async def test_a_persian_clerk_picks_the_delivery_date_in_the_jalali_calendar() -> None:
    shipped: list[dict[str, Any]] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ship"):
            shipped.append(json.loads(request.content))
            return httpx.Response(200, json={})
        if request.url.path == "/api/v1/orders/o1":
            order = {"id": "o1", "deal_id": "d1", "status": "pending", "lines": [], "total": None, "shipment": None}
            return httpx.Response(200, json=order)
        return httpx.Response(200, json={"messages": [], "next_page_token": ""})

    async with console_client(gateway, "orders_clerk", locale="fa") as browser:
        page = await browser.get("/orders/o1")
        assert 'name="estimated_delivery_date__jm"' in page.text and "آذر" in page.text
        assert 'type="date"' not in page.text  # no Gregorian picker in Persian
        day = "estimated_delivery_date"
        form = {"csrf": CSRF, "carrier": "پست", "tracking_number": "IR1", f"{day}__jy": "1405"}
        done = await browser.post("/orders/o1/ship", data={**form, f"{day}__jm": "9", f"{day}__jd": "18"})
        assert done.status_code == 303
        assert shipped == [{"carrier": "پست", "tracking_number": "IR1", "estimated_delivery_date": "2026-12-09"}]
        # 31 Mehr does not exist: refused on the field, nothing sent.
        refused = await browser.post("/orders/o1/ship", data={**form, f"{day}__jm": "7", f"{day}__jd": "31"})
        assert refused.status_code == 422
        assert "چنین تاریخی وجود ندارد." in refused.text
        assert len(shipped) == 1
