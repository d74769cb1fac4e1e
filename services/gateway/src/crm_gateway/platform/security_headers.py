"""Security response headers on every response of the gateway.

The API answers JSON only, so its Content-Security-Policy allows nothing at all. The interactive
docs (/docs and /redoc, crm_gateway.api_docs) load pinned files from cdn.jsdelivr.net, each with
its integrity hash, and one inline start-up script; they get DOCS_CSP, which allows that script by
its hash (no 'unsafe-inline' script), scripts only from ourselves and that CDN, and forbids framing.
Strict-Transport-Security is opt-in (`hsts`), because a local `make run` serves plain http.
A header the response already carries is left as it is.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_gateway.api_docs import SWAGGER_UI_START_HASH

API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = "; ".join(
    [
        "default-src 'none'",
        f"script-src 'self' '{SWAGGER_UI_START_HASH}' https://cdn.jsdelivr.net",
        # Swagger UI and ReDoc set inline styles (style attributes, styled-components).
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "font-src 'self' data:",
        "img-src 'self' data: https://cdn.redoc.ly",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
DOCS_PATHS = frozenset({"/docs", "/redoc"})
HSTS = "max-age=63072000; includeSubDomains"

_COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeadersMiddleware:
    """Adds nosniff, DENY framing, no-referrer and a CSP to every response; no-store on /api/;
    HSTS when `hsts` is set."""

    def __init__(self, app: ASGIApp, hsts: bool = False, docs_paths: Collection[str] = DOCS_PATHS) -> None:
        self.app = app
        self.hsts = hsts
        self.docs_paths = frozenset(docs_paths)
        # The headers of each kind of path (docs or not, /api/ or not), encoded once.
        self._added = {(docs, api): self._headers(docs, api) for docs in (False, True) for api in (False, True)}

    def _headers(self, docs: bool, api: bool) -> tuple[tuple[bytes, bytes], ...]:
        added = dict(_COMMON)
        added["Content-Security-Policy"] = DOCS_CSP if docs else API_CSP
        if api:
            added["Cache-Control"] = "no-store"
        if self.hsts:
            added["Strict-Transport-Security"] = HSTS
        return tuple((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in added.items())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        added = self._added[path in self.docs_paths, path.startswith("/api/")]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name for name, _ in headers}
                message["headers"] = headers + [(name, value) for name, value in added if name not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)
