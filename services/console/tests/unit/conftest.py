"""What the console's page tests share: one session key, a session sealed for the roles a test
signs in with, and a console app driven through httpx against a test's fake gateway (any callable
from an httpx.Request to an httpx.Response, mounted as the gateway client's MockTransport).

A module's tests that take the `browser` fixture define their own `fake` fixture (the gateway
that module fakes); helpers are imported with `from .conftest import ...`."""

from __future__ import annotations

import base64
import html
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from crm_console.app import create_app
from crm_console.session import LOCALE_COOKIE, SESSION_COOKIE, Sealer, Session
from crm_console.settings import ConsoleSettings

KEY = base64.b64encode(os.urandom(32)).decode()
CSRF = "c" * 32
CONSOLE_URL = "http://localhost:8081"

GatewayFake = Callable[[httpx.Request], httpx.Response]


class RecordingGateway:
    """A fake gateway that records every request and answers a write (POST, PATCH) with `refusal`
    when one is set; a module's fake answers the rest in `answer`."""

    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []
        self.refusal: httpx.Response | None = None

    def writes(self) -> list[httpx.Request]:
        return [c for c in self.calls if c.method in ("POST", "PATCH")]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if self.refusal is not None and request.method in ("POST", "PATCH"):
            return self.refusal
        return self.answer(request)

    def answer(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"title": "Not Found"})


def session(*roles: str, **fields: Any) -> Session:
    """A session that is valid for a minute; `fields` replace the token, subject, name or csrf."""
    values: dict[str, Any] = {
        "token": "tok",
        "subject": "someone",
        "name": "someone",
        "roles": roles,
        "expires_at": time.time() + 60,
        "csrf": CSRF,
    }
    return Session(**{**values, **fields})


def signed_in(*roles: str, **fields: Any) -> str:
    """The session cookie's value for someone signed in with these roles, sealed with KEY."""
    return Sealer(KEY).seal_session(session(*roles, **fields))


def as_role(browser: httpx.AsyncClient, *roles: str, locale: str = "he", **fields: Any) -> None:
    """Sign the browser in with these roles and pick the page language."""
    browser.cookies.set(SESSION_COOKIE, signed_in(*roles, **fields))
    browser.cookies.set(LOCALE_COOKIE, locale)


def console_client(gateway: GatewayFake, *roles: str, locale: str = "he", **fields: Any) -> httpx.AsyncClient:
    """A browser on a new console whose gateway calls all go to `gateway`; signed in when roles are
    given (`fields` as for `session`), else signed out. Use it as `async with`."""
    app = create_app(ConsoleSettings(session_key=KEY), transport=httpx.MockTransport(gateway))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE_URL)
    if roles:
        as_role(client, *roles, locale=locale, **fields)
    return client


def hidden(page: str, name: str) -> str:
    """The value of the page's input `name` (a hidden field the form posts back), unescaped."""
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, name
    return html.unescape(found.group(1))


@pytest.fixture
async def browser(fake: GatewayFake) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-out browser on a console against the module's `fake` gateway (tests call as_role)."""
    async with console_client(fake) as client:
        yield client
