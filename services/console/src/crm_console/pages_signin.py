"""Sign-in (OIDC code + PKCE), sign-out, language, health and the role's home page."""

from __future__ import annotations

import secrets
import time

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from crm_console.i18n import LOCALES
from crm_console.session import LOCALE_COOKIE, LOGIN_COOKIE, SESSION_COOKIE, Session
from crm_console.web import (
    HOME,
    LOGIN_TTL_SECONDS,
    api,
    ctx,
    local_path,
    set_cookie,
)

router = APIRouter()


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
        {"state": start.state, "verifier": start.verifier, "next": local_path(next)},
        time.time() + LOGIN_TTL_SECONDS,
    )
    set_cookie(response, LOGIN_COOKIE, sealed, LOGIN_TTL_SECONDS, ctx(request).settings)
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
    set_cookie(
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
    response = RedirectResponse(local_path(next), status_code=303)
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
