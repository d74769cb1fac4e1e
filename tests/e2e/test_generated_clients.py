"""Client apps generate their API client from the gateway's OpenAPI spec. This generates two, as a
client developer would, from the spec the running gateway serves: a Python client
(openapi-python-client), which walks the golden path against the whole system, and TypeScript
types (openapi-typescript), which a strict `tsc` checks a golden-path client against. Optional
headers without an empty default and stable operation ids are what make both usable
(docs/architecture.md, "The public API")."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack
from crm_kit.testing import eventually

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CLIENT_TOOLS = ROOT / "tests" / "clients"
PACKAGE = "crm_api_client"


@pytest.fixture(scope="module")
def spec_file(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = httpx.get(f"{stack.gateway_url}/openapi.json", timeout=15)
    assert spec.status_code == 200, spec.text
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_text(json.dumps(spec.json(), ensure_ascii=False), encoding="utf-8")
    return path


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def python_client(spec_file: Path, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    out = tmp_path_factory.mktemp("python-client")
    generator = Path(sys.executable).parent / "openapi-python-client"
    run([str(generator), "generate", "--path", str(spec_file), "--meta", "none", "--output-path", PACKAGE], out)
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))


def client_module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def test_the_generated_python_client_walks_the_golden_path(
    python_client: ModuleType, stack: Stack, sms: httpx.AsyncClient
) -> None:
    models = client_module("models")
    capture_lead, get_lead = client_module("api.leads.capture_lead"), client_module("api.leads.get_lead")
    convert_lead, close_deal = client_module("api.deals.convert_lead"), client_module("api.deals.close_deal")
    list_orders, ship_order = client_module("api.orders.list_orders"), client_module("api.orders.ship_order")
    token = stack.auth_headers()["Authorization"].removeprefix("Bearer ")
    client = python_client.AuthenticatedClient(base_url=stack.gateway_url, token=token, raise_on_unexpected_status=True)
    phone = f"052-{uuid.uuid4().int % 10_000_000:07d}"

    async with client:
        # No Idempotency-Key argument: the client sends no header (the spec has no "" default).
        body = models.CaptureLeadIn(full_name="רונית אברהם", phone_number=phone, source="radio", locale="he-IL")
        captured = await capture_lead.asyncio_detailed(client=client, body=body)
        assert captured.status_code == 201, captured.content
        lead = captured.parsed
        assert isinstance(lead, models.CapturedLead) and lead.assignment.team_id == "team-media"
        # With a key, a retry answers with the first result.
        other_phone = f"054-{uuid.uuid4().int % 10_000_000:07d}"  # another person: a new lead, 201
        keyed = models.CaptureLeadIn(full_name="דנה לוי", phone_number=other_phone, source="tv")
        key = str(uuid.uuid4())
        first = await capture_lead.asyncio_detailed(client=client, body=keyed, idempotency_key=key)
        again = await capture_lead.asyncio_detailed(client=client, body=keyed, idempotency_key=key)
        assert (first.status_code, again.status_code) == (201, 201) and first.parsed.id == again.parsed.id

        deal = await convert_lead.asyncio(lead.id, client=client, body=models.ConvertLeadIn(title="סלון חדש"))
        assert isinstance(deal, models.Deal) and deal.lead_id == lead.id
        converted = await get_lead.asyncio(lead.id, client=client)
        assert converted.deal_id == deal.id
        price = models.MoneyIn(amount_minor=459900, currency_code="ILS")
        items = [models.LineItemIn(sku="SOFA-3", description="ספה תלת-מושבית", quantity=1, unit_price=price)]
        won = await close_deal.asyncio(
            deal.id, client=client, body=models.CloseDealIn(outcome=models.CloseDealInOutcome.WON, items=items)
        )
        assert won.status == models.DealStatus.WON and won.total.amount_minor == 459900

        async def the_order() -> Any:
            listed = await list_orders.asyncio(client=client, deal_id=deal.id)
            return listed.orders[0] if listed.orders else None

        order = await eventually(the_order, timeout=30)
        eta = dt.date.today() + dt.timedelta(days=4)
        shipment = models.ShipOrderIn(carrier="דואר ישראל", tracking_number="RR1IL", estimated_delivery_date=eta)
        shipped = await ship_order.asyncio(order.id, client=client, body=shipment)
        assert shipped.status == models.OrderStatus.SHIPPED

    async def texted() -> list[dict[str, Any]]:
        return [m for m in (await sms.get("/messages")).json() if m["to"] == lead.phone_number]

    assert len(await eventually(texted, timeout=30)) == 1


GOLDEN_PATH_TS = """
import type { operations, paths } from "./api";

type Body<Op extends keyof operations> = operations[Op] extends {
  requestBody?: { content: { "application/json": infer B } };
}
  ? B
  : never;

const capture: Body<"captureLead"> = { full_name: "רונית אברהם", phone_number: "052-1234567", source: "radio" };
const close: Body<"closeDeal"> = {
  outcome: "won",
  items: [{ sku: "SOFA-3", quantity: 1, unit_price: { amount_minor: 459900, currency_code: "ILS" } }],
};
// The optional header is optional (and a string when given), not a required "".
type CaptureHeaders = NonNullable<operations["captureLead"]["parameters"]["header"]>;
const noKey: CaptureHeaders = {};
const withKey: CaptureHeaders = { "Idempotency-Key": "k-1" };
type Deal = operations["convertLead"]["responses"][201]["content"]["application/json"];
const status: Deal["status"] = "open";
const shipPath: keyof paths = "/api/v1/orders/{order_id}/ship";
export const walk = [capture, close, noKey, withKey, status, shipPath];
"""


@pytest.fixture(scope="module")
def typescript_types(spec_file: Path) -> Path:
    bin_dir = CLIENT_TOOLS / "node_modules" / ".bin"
    assert (bin_dir / "openapi-typescript").exists(), "run `make client-tools` (npm ci in tests/clients)"
    out = spec_file.parent / "ts"
    out.mkdir(exist_ok=True)
    # Fields the server defaults are optional to send: openapi-typescript 7 would otherwise make
    # every field with a `default` required, in request bodies too.
    generate = [str(bin_dir / "openapi-typescript"), str(spec_file), "--default-non-nullable", "false"]
    run([*generate, "--output", str(out / "api.d.ts")], CLIENT_TOOLS)
    return out


def test_the_generated_typescript_types_type_check_a_golden_path_client(typescript_types: Path) -> None:
    (typescript_types / "golden-path.ts").write_text(GOLDEN_PATH_TS, encoding="utf-8")
    tsc = CLIENT_TOOLS / "node_modules" / ".bin" / "tsc"
    args = [str(tsc), "--noEmit", "--strict", "--target", "es2022", "--module", "es2022"]
    run([*args, str(typescript_types / "golden-path.ts")], typescript_types)
    # A wrong body does not compile: the check can fail.
    (typescript_types / "wrong.ts").write_text(
        GOLDEN_PATH_TS.replace('outcome: "won"', 'outcome: "maybe"'), encoding="utf-8"
    )
    wrong = subprocess.run(
        [*args, str(typescript_types / "wrong.ts")], cwd=typescript_types, capture_output=True, text=True, timeout=300
    )
    assert wrong.returncode != 0 and "maybe" in wrong.stdout


def test_every_operation_is_in_both_clients(python_client: ModuleType, typescript_types: Path) -> None:
    ids = (ROOT / "services/gateway/tests/unit/openapi_operation_ids.txt").read_text().split()
    declared = (typescript_types / "api.d.ts").read_text(encoding="utf-8")
    missing_ts = [i for i in ids if f"    {i}: {{" not in declared]
    api = Path(python_client.__file__).parent / "api"
    generated = {p.stem for p in api.rglob("*.py")}
    snake = [_snake(i) for i in ids]
    # importLeads and importAudienceList take text/csv and addTicketAttachment the file's own bytes
    # (PDF, image, text), which openapi-python-client does not generate (an upload is one raw POST;
    # the docs show them with curl).
    raw_bodies = {"importLeads", "importAudienceList", "addTicketAttachment"}
    missing_py = [i for i, s in zip(ids, snake, strict=True) if s not in generated and i not in raw_bodies]
    assert (missing_ts, missing_py) == ([], [])


def _snake(operation_id: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation_id)
