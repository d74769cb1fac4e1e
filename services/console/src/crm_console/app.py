"""The console's pages: sign-in, the rep's work list, lead, deal, pipeline board, orders.

Server-rendered HTML with progressive enhancement: every action is a plain form that works
without JavaScript; ``static/console.js`` adds the live work list and drag-and-drop on the board.
Every page calls the gateway with the signed-in user's token (``api.Gateway``), so what a user
sees and may do is exactly what the public API lets them — the console has no back door.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import Counter, Histogram

from crm_console.api import ApiError, Gateway
from crm_console.i18n import LOCALES, ZONES, Translator
from crm_console.oidc import OidcClient
from crm_console.session import LOCALE_COOKIE, LOGIN_COOKIE, SESSION_COOKIE, Sealer, Session
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
MENU: dict[str, list[tuple[str, str]]] = {
    "sales_rep": [("work", "/work"), ("pipelines", "/pipelines")],
    "sales_manager": [("work", "/work"), ("pipelines", "/pipelines")],
    "orders_clerk": [("orders", "/orders")],
    "admin": [("work", "/work"), ("pipelines", "/pipelines"), ("orders", "/orders")],
}
HOME = {"sales_rep": "/work", "sales_manager": "/pipelines", "orders_clerk": "/orders", "admin": "/work"}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class SignInRequired(Exception):
    pass


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

    def locale_of(self, request: Request) -> str:
        chosen = request.cookies.get(LOCALE_COOKIE, "")
        return chosen if chosen in LOCALES else self.settings.default_locale

    def session_of(self, request: Request) -> Session | None:
        session = self.sealer.open_session(request.cookies.get(SESSION_COOKIE))
        if session is not None and session.expires_at <= time.time():
            return None
        return session

    def require(self, request: Request) -> Session:
        session = self.session_of(request)
        if session is None:
            raise SignInRequired
        return session

    @staticmethod
    def check_csrf(session: Session, form: Any) -> bool:
        return secrets.compare_digest(str(form.get("csrf", "")), session.csrf)

    def render(
        self, request: Request, template: str, session: Session | None, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        t = Translator(self.locale_of(request))
        menu: list[tuple[str, str]] = []
        if session is not None:
            for role in session.roles:
                menu += [item for item in MENU.get(role, []) if item not in menu]
        return self.templates.TemplateResponse(
            request,
            template,
            {"t": t, "session": session, "menu": menu, "path": request.url.path, **context},
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


router = APIRouter()


def create_app(settings: ConsoleSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    console = Console(settings, transport)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await console.gateway.aclose()
        await console.oidc.aclose()

    app = FastAPI(title="CRM console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.console = console
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.middleware("http")(measured_and_hardened)
    app.add_exception_handler(SignInRequired, sign_in_first)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, gateway_refused)  # type: ignore[arg-type]
    app.include_router(router)
    return app


async def measured_and_hardened(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    name = getattr(route, "path", "unmatched")
    if not name.startswith("/static"):
        LATENCY.labels(name).observe(time.perf_counter() - started)
        REQUESTS.labels(name, str(response.status_code)).inc()
        response.headers.setdefault("Cache-Control", "no-store")
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


async def gateway_refused(request: Request, error: ApiError) -> Response:
    if error.status == 401:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    return ctx(request).problem_page(request, ctx(request).session_of(request), error)


# ------------------------------------------------------------------ operations


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    if await ctx(request).gateway.healthy():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "gateway unreachable"}, status_code=503)


# ------------------------------------------------------------------ sign-in


@router.get("/login")
async def login(request: Request, next: str = "/") -> Response:
    start = await ctx(request).oidc.start(ctx(request).locale_of(request))
    response = RedirectResponse(start.url, status_code=303)
    sealed = ctx(request).sealer.seal(
        LOGIN_COOKIE,
        {"state": start.state, "verifier": start.verifier, "next": _local(next)},
        time.time() + LOGIN_TTL_SECONDS,
    )
    _set_cookie(response, LOGIN_COOKIE, sealed, LOGIN_TTL_SECONDS, ctx(request).settings)
    return response


@router.get("/callback")
async def callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    pending = ctx(request).sealer.open(LOGIN_COOKIE, request.cookies.get(LOGIN_COOKIE))
    if error or not code or pending is None or not secrets.compare_digest(state, str(pending.get("state", ""))):
        return ctx(request).render(request, "signed_out.html", None, status_code=400, failed=True)
    try:
        tokens = await ctx(request).oidc.exchange(code, str(pending["verifier"]))
    except httpx.HTTPStatusError:
        return ctx(request).render(request, "signed_out.html", None, status_code=400, failed=True)
    token = str(tokens["access_token"])
    me = (await api(request).call("getMe", token)).body
    expires_at = time.time() + min(int(tokens.get("expires_in", 3600)), ctx(request).settings.session_max_age_seconds)
    session = Session(
        token=token,
        subject=str(me["subject"]),
        name=str(me["subject"]),
        roles=tuple(me["roles"]),
        expires_at=expires_at,
        csrf=secrets.token_urlsafe(24),
    )
    target = str(pending.get("next") or "/")
    response = RedirectResponse(target, status_code=303)
    _set_cookie(
        response,
        SESSION_COOKIE,
        ctx(request).sealer.seal_session(session),
        int(expires_at - time.time()),
        ctx(request).settings,
    )
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = ctx(request).session_of(request)
    form = await request.form()
    if session is not None and not ctx(request).check_csrf(session, form):
        return Response(status_code=403)
    response = RedirectResponse("/signed-out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/signed-out", response_class=HTMLResponse)
async def signed_out(request: Request) -> Response:
    return ctx(request).render(request, "signed_out.html", None)


@router.get("/lang/{locale}")
async def choose_language(request: Request, locale: str, next: str = "/") -> Response:
    response = RedirectResponse(_local(next), status_code=303)
    if locale in LOCALES:
        response.set_cookie(LOCALE_COOKIE, locale, max_age=365 * 86400, samesite="lax", path="/")
    return response


@router.get("/")
async def home(request: Request) -> Response:
    session = ctx(request).require(request)
    for role in session.roles:
        if role in HOME:
            return RedirectResponse(HOME[role], status_code=303)
    return ctx(request).render(request, "welcome.html", session)


# ------------------------------------------------------------------ rep: work list


async def work_items(request: Request, session: Session, page_token: str) -> dict[str, Any]:
    answer = await api(request).call(
        "listMyLeads", session.token, query={"page_size": PAGE_SIZE, "page_token": page_token}
    )
    body: dict[str, Any] = answer.body
    # Unanswered first, the least time left first; answered ones last.
    body["items"].sort(key=lambda i: (i["responded"], not i["has_deadline"], i["seconds_left"]))
    return body


@router.get("/work", response_class=HTMLResponse)
async def work(request: Request, page_token: str = "") -> Response:
    session = ctx(request).require(request)
    return ctx(request).render(
        request, "work.html", session, work=await work_items(request, session, page_token), page_token=page_token
    )


@router.get("/work/rows", response_class=HTMLResponse)
async def work_rows(request: Request, page_token: str = "") -> Response:
    session = ctx(request).require(request)
    return ctx(request).render(request, "work_rows.html", session, work=await work_items(request, session, page_token))


# ------------------------------------------------------------------ lead


async def lead_page(request: Request, session: Session, lead_id: str, **extra: Any) -> HTMLResponse:
    lead = (await api(request).call("getLeadRouting", session.token, path={"lead_id": lead_id})).body
    activities = (
        await api(request).call("listLeadActivities", session.token, path={"lead_id": lead_id}, query={"page_size": 50})
    ).body["activities"]
    pipelines: list[dict[str, Any]] = []
    if not lead.get("deal_id"):
        try:
            pipelines = (await api(request).call("listPipelines", session.token, query={"page_size": 100})).body[
                "pipelines"
            ]
        except ApiError as exc:
            if exc.status != 403:
                raise
    duplicates: list[dict[str, Any]] = []
    try:
        duplicates = (
            await api(request).call(
                "listPossibleDuplicates",
                session.token,
                query={"lead_id": lead_id, "status": "open", "page_size": 5},
            )
        ).body.get("possible_duplicates", [])
    except ApiError as exc:
        if exc.status not in (403, 404):
            raise
    return ctx(request).render(
        request,
        "lead.html",
        session,
        lead=lead,
        activities=activities,
        pipelines=pipelines,
        duplicates=duplicates,
        errors=extra.get("errors", {}),
        notice=extra.get("notice", ""),
        status_code=extra.get("status_code", 200),
    )


@router.get("/leads/{lead_id}", response_class=HTMLResponse)
async def lead(request: Request, lead_id: str) -> Response:
    return await lead_page(request, ctx(request).require(request), lead_id)


@router.post("/leads/{lead_id}/activities")
async def log_activity(request: Request, lead_id: str) -> Response:
    session = ctx(request).require(request)
    form = await request.form()
    if not ctx(request).check_csrf(session, form):
        return Response(status_code=403)
    body: dict[str, Any] = {
        "kind": str(form.get("kind", "")),
        "subject": str(form.get("subject", "")),
        "body": str(form.get("body", "")),
        "request_id": str(form.get("request_id", "")),
    }
    if body["kind"] == "call":
        body["outcome"] = str(form.get("outcome", ""))
    locale = ctx(request).locale_of(request)
    for name in ("start_time", "end_time", "due_time"):
        if form.get(name):
            body[name] = _local_datetime(str(form[name]), locale)
    try:
        await api(request).call("logLeadActivity", session.token, path={"lead_id": lead_id}, body=body)
    except ApiError as exc:
        if exc.status != 422:
            raise
        return await lead_page(request, session, lead_id, errors=exc.field_errors, status_code=422)
    return RedirectResponse(f"/leads/{quote(lead_id)}", status_code=303)


@router.post("/leads/{lead_id}/convert")
async def convert(request: Request, lead_id: str) -> Response:
    session = ctx(request).require(request)
    form = await request.form()
    if not ctx(request).check_csrf(session, form):
        return Response(status_code=403)
    body = {k: str(form[k]) for k in ("title", "pipeline_id") if form.get(k)}
    try:
        deal = (await api(request).call("convertLead", session.token, path={"lead_id": lead_id}, body=body)).body
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        return await lead_page(
            request,
            session,
            lead_id,
            errors=exc.field_errors or {"": exc.problem.get("detail", "")},
            status_code=exc.status,
        )
    return RedirectResponse(f"/deals/{quote(deal['id'])}", status_code=303)


# ------------------------------------------------------------------ deal


async def deal_page(request: Request, session: Session, deal_id: str, **extra: Any) -> HTMLResponse:
    deal = (await api(request).call("getDeal", session.token, path={"deal_id": deal_id})).body
    pipeline = (await api(request).call("getPipeline", session.token, path={"pipeline_id": deal["pipeline_id"]})).body
    lost_reasons: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    if deal["status"] == "open":
        lost_reasons = (await api(request).call("listLostReasons", session.token)).body["lost_reasons"]
    elif deal["status"] == "won":
        try:
            orders = (await api(request).call("listOrders", session.token, query={"deal_id": deal_id})).body["orders"]
        except ApiError as exc:
            if exc.status != 403:
                raise
    return ctx(request).render(
        request,
        "deal.html",
        session,
        deal=deal,
        pipeline=pipeline,
        lost_reasons=lost_reasons,
        orders=orders,
        errors=extra.get("errors", {}),
        notice=extra.get("notice", request.query_params.get("notice", "")),
        status_code=extra.get("status_code", 200),
    )


@router.get("/deals/{deal_id}", response_class=HTMLResponse)
async def deal(request: Request, deal_id: str) -> Response:
    return await deal_page(request, ctx(request).require(request), deal_id)


async def deal_action(request: Request, deal_id: str, operation: str, body: dict[str, Any], etag: str) -> Response:
    """A stage move or a close, with If-Match: JSON for the board's script, a redirect for a form."""
    session = ctx(request).require(request)
    wants_json = request.headers.get("accept", "").startswith("application/json")
    headers = {"If-Match": etag} if etag else {}
    try:
        answer = await api(request).call(
            operation, session.token, path={"deal_id": deal_id}, headers=headers, body=body
        )
    except ApiError as exc:
        if exc.status not in (409, 412, 422):
            raise
        notice = "conflict" if exc.status == 412 else str(exc.problem.get("detail", ""))
        if wants_json:
            t = Translator(ctx(request).locale_of(request))
            return JSONResponse({"ok": False, "message": t(notice) if notice == "conflict" else notice}, exc.status)
        return await deal_page(
            request, session, deal_id, notice=notice, errors=exc.field_errors, status_code=exc.status
        )
    if wants_json:
        return JSONResponse({"ok": True, "etag": answer.body.get("etag", ""), "stage_id": answer.body.get("stage_id")})
    return RedirectResponse(f"/deals/{quote(deal_id)}", status_code=303)


@router.post("/deals/{deal_id}/stage")
async def move_stage(request: Request, deal_id: str) -> Response:
    session = ctx(request).require(request)
    form = await request.form()
    if not ctx(request).check_csrf(session, form):
        return Response(status_code=403)
    return await deal_action(
        request, deal_id, "moveDealStage", {"stage_id": str(form.get("stage_id", ""))}, str(form.get("etag", ""))
    )


@router.post("/deals/{deal_id}/close")
async def close(request: Request, deal_id: str) -> Response:
    session = ctx(request).require(request)
    form = await request.form()
    if not ctx(request).check_csrf(session, form):
        return Response(status_code=403)
    body: dict[str, Any] = {"outcome": str(form.get("outcome", ""))}
    if form.get("lost_reason_code"):
        body["lost_reason_code"] = str(form["lost_reason_code"])
    if body["outcome"] == "won" and form.get("sku"):
        body["items"] = [_line_item(form)]
    return await deal_action(request, deal_id, "closeDeal", body, str(form.get("etag", "")))


# ------------------------------------------------------------------ manager: pipelines and board


@router.get("/pipelines", response_class=HTMLResponse)
async def pipelines(request: Request) -> Response:
    session = ctx(request).require(request)
    found = (await api(request).call("listPipelines", session.token, query={"page_size": 100})).body["pipelines"]
    return ctx(request).render(request, "pipelines.html", session, pipelines=found)


@router.get("/pipelines/{pipeline_id}/board", response_class=HTMLResponse)
async def board(request: Request, pipeline_id: str) -> Response:
    session = ctx(request).require(request)
    pipeline = (await api(request).call("getPipeline", session.token, path={"pipeline_id": pipeline_id})).body
    found = (
        await api(request).call(
            "getPipelineBoard", session.token, path={"pipeline_id": pipeline_id}, query={"deals_per_stage": 50}
        )
    ).body
    return ctx(request).render(request, "board.html", session, pipeline=pipeline, board=found)


# ------------------------------------------------------------------ orders clerk


@router.get("/orders", response_class=HTMLResponse)
async def orders(request: Request, page_token: str = "") -> Response:
    session = ctx(request).require(request)
    found = (
        await api(request).call("listOrders", session.token, query={"page_size": PAGE_SIZE, "page_token": page_token})
    ).body
    return ctx(request).render(request, "orders.html", session, orders=found)


async def order_page(request: Request, session: Session, order_id: str, **extra: Any) -> HTMLResponse:
    order = (await api(request).call("getOrder", session.token, path={"order_id": order_id})).body
    messages: list[dict[str, Any]] = []
    try:
        messages = (
            await api(request).call("listMessages", session.token, query={"order_id": order_id, "page_size": 20})
        ).body["messages"]
    except ApiError as exc:
        if exc.status != 403:
            raise
    default_date = (date.today() + timedelta(days=3)).isoformat()
    return ctx(request).render(
        request,
        "order.html",
        session,
        order=order,
        messages=messages,
        default_date=default_date,
        form=extra.get("form", {}),
        errors=extra.get("errors", {}),
        status_code=extra.get("status_code", 200),
    )


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order(request: Request, order_id: str) -> Response:
    return await order_page(request, ctx(request).require(request), order_id)


@router.post("/orders/{order_id}/ship")
async def ship(request: Request, order_id: str) -> Response:
    session = ctx(request).require(request)
    form = await request.form()
    if not ctx(request).check_csrf(session, form):
        return Response(status_code=403)
    body = {k: str(form.get(k, "")) for k in ("carrier", "tracking_number", "estimated_delivery_date")}
    try:
        await api(request).call("shipOrder", session.token, path={"order_id": order_id}, body=body)
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        errors = exc.field_errors or {"": str(exc.problem.get("detail", ""))}
        return await order_page(request, session, order_id, form=body, errors=errors, status_code=exc.status)
    return RedirectResponse(f"/orders/{quote(order_id)}", status_code=303)


def _line_item(form: Any) -> dict[str, Any]:
    """One order line from the close-won form; the price is typed in major units (₪ 12.50)."""
    try:
        minor = int((Decimal(str(form.get("unit_price", "0"))) * 100).to_integral_value())
        quantity = int(str(form.get("quantity", "1")))
    except (InvalidOperation, ValueError):
        minor, quantity = -1, 0  # the gateway names the field in its 422
    return {
        "sku": str(form.get("sku", "")),
        "description": str(form.get("description", "")),
        "quantity": quantity,
        "unit_price": {"amount_minor": minor, "currency_code": str(form.get("currency_code", "ILS"))},
    }


def _local(target: str) -> str:
    """Only a path on this site (no scheme, no host, no '//'), so a link cannot send users away."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _local_datetime(value: str, locale: str) -> str:
    """A datetime-local form value (the user's wall clock) as an ISO instant with its offset."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # the gateway's 422 names the field
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZONES.get(locale, ZONES["he"]))
    return moment.astimezone(UTC).isoformat()


def _set_cookie(response: Response, name: str, value: str, max_age: int, settings: ConsoleSettings) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, secure=settings.secure_cookies, samesite="lax", path="/"
    )
