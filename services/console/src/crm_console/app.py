"""The console application: the pages of every area on one FastAPI app.

Server-rendered HTML with progressive enhancement: every action is a plain form that works
without JavaScript; ``static/console.js`` adds the live work list and drag-and-drop on the board.
Every page calls the gateway with the signed-in user's token (``api.Gateway``), so what a user
sees and may do is exactly what the public API lets them — the console has no back door.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from crm_console import (
    pages_admin,
    pages_customer,
    pages_manager,
    pages_marketing,
    pages_orders,
    pages_org,
    pages_people,
    pages_promotions,
    pages_quotes,
    pages_reports,
    pages_retention,
    pages_sales,
    pages_search,
    pages_service,
    pages_signin,
)
from crm_console.api import ApiError
from crm_console.settings import ConsoleSettings
from crm_console.web import (
    HERE,
    Console,
    FormRefused,
    SignInRequired,
    form_refused,
    gateway_refused,
    measured_and_hardened,
    sign_in_first,
)

# Each area's pages (an APIRouter per module); a new area adds its module here.
PAGES = (
    pages_signin,
    pages_sales,
    pages_quotes,
    pages_orders,
    pages_people,
    pages_org,
    pages_admin,
    pages_marketing,
    pages_promotions,
    pages_manager,
    pages_search,
    pages_customer,
    pages_service,
    pages_reports,
    pages_retention,
)


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
    app.add_exception_handler(FormRefused, form_refused)  # type: ignore[arg-type]
    for module in PAGES:
        app.include_router(module.router)
    return app
