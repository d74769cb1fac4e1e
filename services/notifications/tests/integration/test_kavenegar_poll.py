"""With Kavenegar as the provider, its delivery statuses and the sender line's replies are fetched
(it calls nobody back): a delivered status settles the message once, a reply of ۱۱ from an
Iranian mobile refuses advertising and is confirmed through Kavenegar. The notifications service
runs against real PostgreSQL and NATS and the fake Kavenegar API on a real port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from crm_devstack.kavenegar_fake import create_app
from crm_kit.testing import eventually, free_port, reset_stream, running_service
from crm_notifications import commands, domain
from crm_notifications.db import messages, messaging, suppressions
from crm_notifications.kavenegar import KavenegarSmsProvider
from crm_notifications.main import MIGRATIONS_DIR, NotificationsSettings, setup

pytestmark = pytest.mark.integration

KEY = "kavenegar-poll-test-key"
LINE = "10004346"


@pytest.fixture
async def kavenegar() -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app([KEY]), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: asyncio.sleep(0, result=server.started), timeout=10, interval=0.02)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        yield client
    server.should_exit = True
    await task


@pytest.fixture
async def service(fresh_database: Any, nats_server: str, kavenegar: httpx.AsyncClient) -> AsyncIterator[Any]:
    await reset_stream(nats_server)
    settings = NotificationsSettings(
        database_url=await fresh_database("notifications"),
        nats_url=nats_server,
        grpc_port=free_port(),
        metrics_port=free_port(),
        sms_provider="kavenegar",
        sms_base_url=str(kavenegar.base_url),
        sms_api_key=KEY,
        sms_sender=LINE,
        advertising_rules="IR",
        kavenegar_poll_seconds=0.2,
        promotion_poll_seconds=3600,
    )
    async with running_service(settings, messaging, MIGRATIONS_DIR, setup) as running:
        yield running


async def test_a_status_settles_its_message_and_a_reply_of_11_refuses_and_is_confirmed(
    service: Any, kavenegar: httpx.AsyncClient
) -> None:
    provider = KavenegarSmsProvider(str(kavenegar.base_url), KEY)
    try:
        sent = await provider.send(to="+989121234567", body="تخفیف ویژه لغو ۱۱", sender=LINE, idempotency_key="p:1")
    finally:
        await provider.aclose()
    async with service.db.unit_of_work() as uow:
        row, _ = await commands.record_intent(
            uow,
            commands.Intent(
                "p:1", domain.SMS, "+989121234567", "تخفیف ویژه لغو ۱۱", "fa-IR", domain.MessageStatus.PENDING, "", ""
            ),
        )
        await commands.mark_sent(uow, row.id, sent.provider_message_id, 1, datetime.now(UTC))

    async def delivery() -> str | None:
        async with service.db.unit_of_work() as uow:
            found = await uow.conn.execute(select(messages.c.delivery_status).where(messages.c.id == row.id))
            return found.scalar_one()

    assert await delivery() is None  # queued at Kavenegar (status 1): nothing recorded yet
    await kavenegar.post("/control/status", json={"status": 10, "receptor": "09121234567"})
    assert await eventually(delivery) == "delivered"

    await kavenegar.post("/control/inbound", json={"sender": "09121234567", "receptor": LINE, "message": "۱۱"})

    async def refused() -> list[str] | None:
        async with service.db.unit_of_work() as uow:
            found = (
                (await uow.conn.execute(select(suppressions.c.source).where(suppressions.c.address == "+989121234567")))
                .scalars()
                .all()
            )
        return list(found) or None

    assert await eventually(refused) == ["sms_reply"]

    async def confirmed() -> list[dict[str, Any]] | None:
        sent_now = [m for m in (await kavenegar.get("/messages")).json() if m["receptor"] == "09121234567"]
        return sent_now if len(sent_now) == 2 else None

    confirmation = (await eventually(confirmed))[1]
    assert confirmation["message"] != "تخفیف ویژه لغو ۱۱"  # the confirmation, in Persian
