"""Write the gateway's OpenAPI document into the console (its API client is driven by it).

``python scripts/console_openapi.py`` refreshes services/console/src/crm_console/gateway_openapi.json;
``--check`` fails when the copy differs from what the gateway publishes (tests/contracts runs it).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "services/console/src/crm_console/gateway_openapi.json"


def gateway_spec() -> str:
    os.environ.setdefault("CRM_AUTH_JWKS_URL", "http://127.0.0.1:8080/.well-known/jwks.json")
    from crm_gateway.app import create_app
    from crm_gateway.settings import GatewaySettings

    spec = create_app(GatewaySettings()).openapi()
    return json.dumps(spec, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    spec = gateway_spec()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != spec:
            print(f"{TARGET} is not the gateway's spec: run python scripts/console_openapi.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(spec, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
