"""The interactive API docs (/docs: Swagger UI, /redoc: ReDoc), when `api_docs` is on.

FastAPI's own pages load the latest `swagger-ui-dist@5` and `redoc@2` from a CDN with no integrity
check, so whoever controls that CDN path (or the package's next release) runs script on our
origin. These pages pin one exact version of each file and carry its Subresource Integrity hash:
the browser refuses a file whose bytes differ. The only inline script is Swagger UI's start-up
call, allowed by its own hash in the docs' Content-Security-Policy (no 'unsafe-inline' script).
No favicon, no Google Fonts: nothing else is fetched from a third party.

To move to another version: `npm pack swagger-ui-dist@<v>` / `npm pack redoc@<v>`, then
`openssl dgst -sha384 -binary <file> | base64` of each file named below (jsDelivr's /npm/ paths
serve the package's files byte for byte), and update the constants together.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

CDN = "https://cdn.jsdelivr.net/npm"


@dataclass(frozen=True)
class PinnedAsset:
    url: str
    integrity: str


SWAGGER_UI_JS = PinnedAsset(
    f"{CDN}/swagger-ui-dist@5.35.0/swagger-ui-bundle.js",
    "sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9",
)
SWAGGER_UI_CSS = PinnedAsset(
    f"{CDN}/swagger-ui-dist@5.35.0/swagger-ui.css",
    "sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I",
)
REDOC_JS = PinnedAsset(
    f"{CDN}/redoc@2.5.4/bundles/redoc.standalone.js",
    "sha384-w447zOpYfw/1Tv/5AK9NfHTlQIqE3RVR6KY62jCyy9zNDgO64cMwGGP1Fj0zJVf5",
)
PINNED = (SWAGGER_UI_JS, SWAGGER_UI_CSS, REDOC_JS)

# Relative, so the pages work under any path prefix the ingress adds.
SWAGGER_UI_START = (
    'SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", layout: "BaseLayout", deepLinking: true,'
    " persistAuthorization: false, presets: [SwaggerUIBundle.presets.apis]});"
)
SWAGGER_UI_START_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SWAGGER_UI_START.encode()).digest()).decode()


def _script(asset: PinnedAsset) -> str:
    return f'<script src="{asset.url}" integrity="{asset.integrity}" crossorigin="anonymous"></script>'


def _stylesheet(asset: PinnedAsset) -> str:
    return f'<link rel="stylesheet" href="{asset.url}" integrity="{asset.integrity}" crossorigin="anonymous">'


def swagger_ui_page(title: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title} - Swagger UI</title>{_stylesheet(SWAGGER_UI_CSS)}</head>
<body><div id="swagger-ui"></div>{_script(SWAGGER_UI_JS)}<script>{SWAGGER_UI_START}</script></body>
</html>
"""


def redoc_page(title: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title} - ReDoc</title><style>body {{ margin: 0; }}</style></head>
<body><redoc spec-url="openapi.json"></redoc>{_script(REDOC_JS)}</body>
</html>
"""


def install_api_docs(app: FastAPI) -> None:
    """GET /docs and /redoc, both reading the app's /openapi.json (which must be served)."""
    swagger_html, redoc_html = swagger_ui_page(app.title), redoc_page(app.title)

    @app.get("/docs", include_in_schema=False, name="swagger_ui_html")
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger_html)

    @app.get("/redoc", include_in_schema=False, name="redoc_html")
    async def redoc() -> HTMLResponse:
        return HTMLResponse(redoc_html)
