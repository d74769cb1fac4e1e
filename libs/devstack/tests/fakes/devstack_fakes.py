"""Stand-ins for the CRM services, used to test the launcher on its own.

``python -m crm_<name> migrate|serve`` packages in a temporary directory import this
module. Knobs (environment): FAKE_FAIL_MIGRATE=<service>, FAKE_CRASH=<service>.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from fastapi import FastAPI


def main(service: str) -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    assert os.environ["CRM_SERVICE_NAME"] == service, os.environ["CRM_SERVICE_NAME"]
    if command == "migrate":
        asyncio.run(_migrate(service))
    elif command == "serve":
        if os.environ.get("FAKE_CRASH") == service:
            print(f"{service}: crashing on purpose", flush=True)
            sys.exit(2)
        if service == "gateway":
            _serve_gateway()
        else:
            asyncio.run(_serve_backend(service))
    else:
        sys.exit(f"unknown command {command!r}")


async def _migrate(service: str) -> None:
    if os.environ.get("FAKE_FAIL_MIGRATE") == service:
        print(f"{service}: migration exploded on purpose", flush=True)
        sys.exit(3)
    dsn = os.environ["CRM_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("create table if not exists migrated (service text primary key)")
        await conn.execute("insert into migrated values ($1) on conflict do nothing", service)
    finally:
        await conn.close()
    print(f"{service}: migrated", flush=True)


async def _serve_backend(service: str) -> None:
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{os.environ['CRM_GRPC_PORT']}")
    await server.start()
    print(f"{service}: serving", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(grace=1)
    print(f"{service}: stopped", flush=True)


def _serve_gateway() -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/readyz")
    async def readyz() -> dict[str, object]:
        return {"status": "ready", "unavailable": []}

    # The console (real, beside these fakes) is ready once the gateway answers its liveness.
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # Leads are shared: a deal is converted from a lead the fake knows.
    leads: dict[str, dict[str, Any]] = {}
    _add_campaign_routes(app)
    _add_catalog_routes(app)
    _add_lead_routes(app, leads)
    _add_deal_routes(app, leads)
    _add_service_desk_routes(app, leads)
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["CRM_HTTP_PORT"]), log_level="warning")


def _add_campaign_routes(app: FastAPI) -> None:
    from fastapi import HTTPException

    campaigns: dict[tuple[str, str], dict[str, Any]] = {}

    @app.post("/api/v1/campaigns", status_code=201)
    async def create_campaign(body: dict[str, Any]) -> dict[str, Any]:
        key = (body["source"], body["name"])
        if key in campaigns:
            raise HTTPException(409, "campaign exists")
        campaigns[key] = {**body, "id": uuid.uuid4().hex}
        return campaigns[key]


def _add_catalog_routes(app: FastAPI) -> None:
    """Products and price lists, created once per request_id as the real ones are."""
    from fastapi import HTTPException

    created: dict[str, dict[str, Any]] = {}

    def _create(kind: str, body: dict[str, Any]) -> dict[str, Any]:
        key = f"{kind}:{body.get('request_id') or uuid.uuid4().hex}"
        return created.setdefault(key, {**body, "id": uuid.uuid4().hex})

    @app.post("/api/v1/products", status_code=201)
    async def create_product(body: dict[str, Any]) -> dict[str, Any]:
        return _create("product", body)

    @app.post("/api/v1/price-lists", status_code=201)
    async def create_price_list(body: dict[str, Any]) -> dict[str, Any]:
        if any(item["product_id"] not in {v["id"] for v in created.values()} for item in body["items"]):
            raise HTTPException(422, "unknown product")
        return _create("price-list", body)

    @app.get("/api/v1/price-lists")
    async def list_price_lists() -> list[dict[str, Any]]:
        return [v for k, v in created.items() if k.startswith("price-list:")]


def _add_lead_routes(app: FastAPI, leads: dict[str, dict[str, Any]]) -> None:
    @app.get("/api/v1/leads")
    async def list_leads() -> list[dict[str, Any]]:
        return list(leads.values())

    @app.post("/api/v1/leads", status_code=201)
    async def create_lead(body: dict[str, Any]) -> dict[str, Any]:
        existing = next((lead for lead in leads.values() if lead["request_id"] == body["request_id"]), None)
        if existing is not None:
            return existing
        lead = {**body, "id": uuid.uuid4().hex}
        leads[lead["id"]] = lead
        return lead


def _add_deal_routes(app: FastAPI, leads: dict[str, dict[str, Any]]) -> None:
    """A lead's conversion into a deal and the deal's close."""
    from fastapi import HTTPException

    converted: dict[str, str] = {}
    closed: set[str] = set()

    @app.post("/api/v1/leads/{lead_id}/convert")
    async def convert(lead_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if lead_id not in leads:
            raise HTTPException(404)
        if lead_id in converted:
            raise HTTPException(409, "already converted")
        converted[lead_id] = uuid.uuid4().hex
        return {"id": converted[lead_id], "title": body["title"], "lead_id": lead_id}

    @app.post("/api/v1/deals/{deal_id}/close")
    async def close(deal_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if deal_id not in converted.values():
            raise HTTPException(404)
        if deal_id in closed:
            raise HTTPException(409, "already closed")
        closed.add(deal_id)
        return {"id": deal_id, "outcome": body["outcome"]}

    @app.get("/api/v1/deals/closed")
    async def list_closed() -> list[str]:
        return sorted(closed)


def _add_service_desk_routes(app: FastAPI, leads: dict[str, dict[str, Any]]) -> None:
    """The queues, a customer per known lead, and tickets opened once per request_id."""
    from fastapi import HTTPException

    queues: dict[str, dict[str, Any]] = {}
    tickets: dict[str, dict[str, Any]] = {}

    @app.put("/api/v1/support/queues/{queue_id}")
    async def put_queue(queue_id: str, body: dict[str, Any]) -> dict[str, Any]:
        queues[queue_id] = {**body, "id": queue_id}
        return queues[queue_id]

    @app.get("/api/v1/customers")
    async def customers(lead_id: str) -> dict[str, Any]:
        return {"customers": [{"id": f"customer-of-{lead_id}"}] if lead_id in leads else []}

    @app.post("/api/v1/tickets", status_code=201)
    async def open_ticket(body: dict[str, Any]) -> dict[str, Any]:
        if body["customer_id"].removeprefix("customer-of-") not in leads:
            raise HTTPException(422, "unknown customer")
        return tickets.setdefault(body["request_id"], {**body, "id": uuid.uuid4().hex})

    @app.get("/api/v1/tickets")
    async def list_tickets() -> dict[str, Any]:
        return {"tickets": list(tickets.values()), "queues": sorted(queues)}

    _add_consent_routes(app)


def _add_consent_routes(app: FastAPI) -> None:
    """A customer's consent records, and the state in force per channel and purpose."""
    records: dict[str, list[dict[str, Any]]] = {}

    @app.post("/api/v1/customers/{customer_id}/consents", status_code=201)
    async def record(customer_id: str, body: dict[str, Any]) -> dict[str, Any]:
        records.setdefault(customer_id, []).append(body)
        return body

    @app.get("/api/v1/customers/{customer_id}/consents")
    async def consents(customer_id: str) -> dict[str, Any]:
        latest = {(r["channel"], r["purpose"]): r["granted"] for r in records.get(customer_id, [])}
        states = [{"channel": c, "purpose": p, "granted": g} for (c, p), g in latest.items()]
        return {"records": records.get(customer_id, []), "states": states}
