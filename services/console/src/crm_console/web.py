"""What every console page shares: the Console (clients, sealer, templates), the menu, the
hardening middleware, and the sign-in and gateway-refusal handlers.

Server-rendered HTML with progressive enhancement: every action is a plain form that works
without JavaScript; ``static/console.js`` adds the live work list and drag-and-drop on the board.
Every page calls the gateway with the signed-in user's token (``api.Gateway``), so what a user
sees and may do is exactly what the public API lets them — the console has no back door.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import Counter, Histogram
from starlette.datastructures import FormData

from crm_console import dates
from crm_console.api import ApiError, Gateway
from crm_console.i18n import JALALI_MONTHS, LOCALES, ZONES, Translator
from crm_console.oidc import OidcClient
from crm_console.session import LOCALE_COOKIE, SESSION_COOKIE, Sealer, Session
from crm_console.settings import ConsoleSettings

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
LOGIN_TTL_SECONDS = 600
PAGE_SIZE = 50

REQUESTS = Counter("crm_console_requests_total", "Console pages and actions answered", ["route", "status"])
LATENCY = Histogram(
    "crm_console_request_seconds",
    "Console answer time, gateway calls included",
    ["route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# What each role's menu shows (the gateway still decides every call).
# The menu, in order: (message key, path, roles that see it). Each page module adds its own
# entries with menu_item() when imported; the gateway still decides every call.
MENU: list[tuple[str, str, frozenset[str]]] = []


def menu_item(key: str, href: str, *roles: str) -> None:
    MENU.append((key, href, frozenset(roles)))


# Entries under these path prefixes fold into one menu of their own (a role with many screens
# gets a short top line); the rest stand on the top line.
MENU_GROUPS = {"/manager/": "menu_manage", "/marketing/": "menu_marketing", "/admin/": "menu_admin"}


# The top line's order (every module registers at import, in whatever order they are imported).
TOP_LINE = ("work", "my_tasks", "pipelines", "orders")
# Entries of a folded menu listed first, in this order, whichever module registered them first
# (pages_admin imports before pages_org, yet the administrator's menu starts with the teams).
GROUP_FIRST = ("teams_reps", "audit_log", "dead_letters")


def menu_groups(items: list[tuple[str, str]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """[(group key or "", entries)]: the top-line entries first (one per "" group, in TOP_LINE
    order), then each group's entries together: GROUP_FIRST's in its order, the rest in the order
    they were registered."""
    top: list[tuple[str, str]] = []
    groups: dict[str, list[tuple[str, str]]] = {}
    for key, href in items:
        group = next((name for prefix, name in MENU_GROUPS.items() if href.startswith(prefix)), "")
        if group:
            groups.setdefault(group, []).append((key, href))
        else:
            top.append((key, href))
    top.sort(key=lambda item: TOP_LINE.index(item[0]) if item[0] in TOP_LINE else len(TOP_LINE))
    for entries in groups.values():
        entries.sort(key=lambda item: GROUP_FIRST.index(item[0]) if item[0] in GROUP_FIRST else len(GROUP_FIRST))
    return [("", [item]) for item in top] + [
        (group, groups[group]) for group in MENU_GROUPS.values() if group in groups
    ]


HOME = {
    "sales_rep": "/work",
    "sales_manager": "/manager/team",
    "orders_clerk": "/orders",
    "service_agent": "/service/tickets",
    "admin": "/work",
    "marketing": "/marketing/imports",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class SignInRequired(Exception):
    pass


class FormRefused(Exception):
    """A form post without this session's CSRF value: answered 403, nothing sent to the gateway."""


# Who finds customers from the header's search box: the roles of the gateway's searchCustomers
# (crm_gateway.platform.authz POLICIES), everyone but marketing.
SEARCH_ROLES = frozenset({"admin", "sales_manager", "sales_rep", "orders_clerk", "service_agent"})


class Console:
    """What every page needs: the gateway and issuer clients, the cookie sealer, the templates."""

    def __init__(self, settings: ConsoleSettings, transport: httpx.AsyncBaseTransport | None) -> None:
        self.settings = settings
        self.sealer = Sealer(settings.session_key)
        self.gateway = Gateway(
            settings.gateway_url, timeout_seconds=settings.request_timeout_seconds, transport=transport
        )
        self.oidc = OidcClient(
            settings.oidc_issuer_url,
            settings.oidc_browser_issuer_url,
            settings.oidc_client_id,
            f"{settings.public_url.rstrip('/')}/callback",
            timeout_seconds=settings.request_timeout_seconds,
            transport=transport,
        )
        self.templates = Jinja2Templates(directory=HERE / "templates")
        # The date pickers' helpers (templates/_date.html).
        self.templates.env.globals.update(
            jalali_of=dates.jalali_of, jalali_years=dates.jalali_years, jalali_months=JALALI_MONTHS
        )

    def locale_of(self, request: Request) -> str:
        chosen = request.cookies.get(LOCALE_COOKIE, "")
        return chosen if chosen in LOCALES else self.settings.default_locale

    def session_of(self, request: Request) -> Session | None:
        # The sealed value carries the session's expiry; an expired one opens as None.
        return self.sealer.open_session(request.cookies.get(SESSION_COOKIE))

    def require(self, request: Request) -> Session:
        session = self.session_of(request)
        if session is None:
            raise SignInRequired
        return session

    @staticmethod
    def check_csrf(session: Session, form: Any) -> bool:
        return secrets.compare_digest(str(form.get("csrf", "")), session.csrf)

    async def signed_form(self, request: Request, **limits: int) -> tuple[Session, FormData]:
        """The signed-in session and its form post; FormRefused (403) when the post does not carry
        the session's CSRF value, SignInRequired when nobody is signed in. ``limits`` go to the
        form parser (max_files, max_fields)."""
        session = self.require(request)
        form = await request.form(**limits)
        if not self.check_csrf(session, form):
            raise FormRefused
        return session, form

    def render(
        self, request: Request, template: str, session: Session | None, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        t = Translator(self.locale_of(request))
        menu: list[tuple[str, list[tuple[str, str]]]] = []
        if session is not None:
            menu = menu_groups([(key, href) for key, href, roles in MENU if roles.intersection(session.roles)])
        return self.templates.TemplateResponse(
            request,
            template,
            {
                "t": t,
                "session": session,
                "menu": menu,
                "path": request.url.path,
                # Where a language link comes back to: this page with its query (filters, a search).
                "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
                "can_search": session is not None and bool(SEARCH_ROLES.intersection(session.roles)),
                **context,
            },
            status_code=status_code,
        )

    def problem_page(self, request: Request, session: Session | None, error: ApiError) -> HTMLResponse:
        key = {403: "forbidden", 404: "not_found"}.get(error.status, "unavailable" if error.status >= 500 else "error")
        return self.render(
            request, "error.html", session, status_code=error.status, message_key=key, problem=error.problem
        )


def ctx(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def api(request: Request) -> Gateway:
    return ctx(request).gateway


async def measured_and_hardened(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    name = getattr(route, "path", "unmatched")
    if not name.startswith("/static"):
        LATENCY.labels(name).observe(time.perf_counter() - started)
        REQUESTS.labels(name, str(response.status_code)).inc()
        response.headers.setdefault("Cache-Control", "no-store")
    if not response.headers.get("content-type", "").startswith("application/pdf"):
        # Not on a quote's PDF: the browser's own viewer shows it, and a page policy can block it.
        response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response


async def sign_in_first(request: Request, _: SignInRequired) -> Response:
    if request.headers.get("accept", "").startswith("application/json"):
        return JSONResponse({"error": "signed_out"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


async def form_refused(request: Request, _: FormRefused) -> Response:
    return Response(status_code=403)


async def gateway_refused(request: Request, error: ApiError) -> Response:
    if error.status == 401:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    return ctx(request).problem_page(request, ctx(request).session_of(request), error)


# ------------------------------------------------------------------ operations


def local_path(target: str) -> str:
    """Only a path on this site (no scheme, no host, no '//'), so a link cannot send users away."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def next_href(path: str, query: Mapping[str, str | list[str]], page_token: str) -> str:
    """The "next" link of a keyset-paged list: the same filters (a list is a repeated parameter)
    and the answer's page token."""
    return f"{path}?{urlencode({**query, 'page_token': page_token}, doseq=True)}"


def local_datetime(value: str, locale: str) -> str:
    """A datetime-local form value (the user's wall clock) as an ISO instant with its offset."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # the gateway's 422 names the field
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZONES.get(locale, ZONES["he"]))
    return moment.astimezone(UTC).isoformat()


def set_cookie(response: Response, name: str, value: str, max_age: int, settings: ConsoleSettings) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, secure=settings.secure_cookies, samesite="lax", path="/"
    )
