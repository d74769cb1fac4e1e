"""Ticket attachments end to end, as separate processes (the support service's object store is the
stack's attachments/ directory): an agent attaches an invoice and a Hebrew-named photo to a
complaint, lists and downloads them byte for byte; an oversized body, a program and another team's
manager are turned away."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from urllib.parse import quote, urlsplit

import httpx
import pytest

from crm_devstack.stack import Stack
from crm_kit.testing import eventually

pytestmark = pytest.mark.e2e

ITEMS = [{"sku": "SOFA-3", "quantity": 1, "unit_price": {"amount_minor": 459900, "currency_code": "ILS"}}]
COMPLAINTS = {"strategy": "least_loaded", "member_ids": ["agent-yosef"], "team_id": "team-service"}
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
# A PNG signature and header chunk, then enough bytes to span several HTTP reads.
PHOTO = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4096
PHOTO_NAME = "תמונה של הספה השבורה.png"


async def status_of_declared_upload(stack: Stack, target: str, length: int) -> int:
    """The status the gateway answers to the head of an upload declaring length bytes."""
    url = urlsplit(stack.gateway_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        head = [
            f"POST {target} HTTP/1.1",
            f"Host: {url.netloc}",
            "Content-Type: application/pdf",
            f"Content-Length: {length}",
            *(f"{name}: {value}" for name, value in stack.auth_headers("service_agent").items()),
        ]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=15)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def a_customer(api: httpx.AsyncClient) -> str:
    phone = f"+97254{uuid.uuid4().int % 10_000_000:07d}"
    lead = await api.post("/api/v1/leads", json={"full_name": "דנה כהן", "phone_number": phone, "source": "radio"})
    assert lead.status_code == 201, lead.text
    deal = await api.post(f"/api/v1/leads/{lead.json()['id']}/convert", json={"title": "ספה"})
    assert deal.status_code == 201, deal.text
    won = await api.post(f"/api/v1/deals/{deal.json()['id']}/close", json={"outcome": "won", "items": ITEMS})
    assert won.status_code == 200, won.text

    async def customer() -> str | None:
        found = (await api.get("/api/v1/customers", params={"lead_id": lead.json()["id"]})).json()["customers"]
        return found[0]["id"] if found else None

    return await eventually(customer, timeout=30)


async def test_an_agent_attaches_lists_and_downloads_files_of_a_complaint(api: httpx.AsyncClient, stack: Stack) -> None:
    assert (await api.put("/api/v1/support/queues/complaints", json=COMPLAINTS)).status_code == 200
    customer_id = await a_customer(api)
    agent = httpx.AsyncClient(base_url=stack.gateway_url, timeout=30, headers=stack.auth_headers("service_agent"))
    other_manager = httpx.AsyncClient(
        base_url=stack.gateway_url,
        timeout=15,
        headers=stack.auth_headers("sales_manager", subject="manager-media", team_id="team-media"),
    )
    async with agent, other_manager:
        opened = await agent.post(
            "/api/v1/tickets",
            json={
                "customer_id": customer_id,
                "kind": "complaint",
                "channel": "phone",
                "priority": "high",
                "category_id": "product.damage",
                "subject": "הספה הגיעה שבורה",
            },
        )
        assert opened.status_code == 201, opened.text
        files = f"/api/v1/tickets/{opened.json()['id']}/attachments"

        invoice = await agent.post(
            files, params={"filename": "invoice.pdf"}, content=PDF, headers={"Content-Type": "application/pdf"}
        )
        assert invoice.status_code == 201, invoice.text
        photo = await agent.post(
            files, params={"filename": PHOTO_NAME}, content=PHOTO, headers={"Content-Type": "image/png"}
        )
        assert photo.status_code == 201, photo.text
        assert (photo.json()["filename"], photo.json()["size_bytes"], photo.json()["sha256"]) == (
            PHOTO_NAME,
            len(PHOTO),
            hashlib.sha256(PHOTO).hexdigest(),
        )

        listed = await agent.get(files)
        assert listed.status_code == 200, listed.text
        assert [(a["filename"], a["content_type"]) for a in listed.json()["attachments"]] == [
            ("invoice.pdf", "application/pdf"),
            (PHOTO_NAME, "image/png"),
        ]

        for added, data, media_type in ((invoice, PDF, "application/pdf"), (photo, PHOTO, "image/png")):
            got = await agent.get(f"{files}/{added.json()['id']}")
            assert got.status_code == 200, got.text
            assert got.content == data
            assert got.headers["content-type"] == media_type
            assert got.headers["x-content-type-options"] == "nosniff"
            filename = added.json()["filename"]
            assert got.headers["content-disposition"] == f"attachment; filename*=UTF-8''{quote(filename, safe='')}"

        # Refused by its declared length before a byte of it is read (a client still sending the
        # 11 MiB would see the connection closed under it, so only the head is sent here).
        status = await status_of_declared_upload(stack, f"{files}?filename=big.pdf", 11 * 1024 * 1024)
        assert status == 413

        program = await agent.post(
            files,
            params={"filename": "setup.exe"},
            content=b"MZ\x90\x00",
            headers={"Content-Type": "application/x-msdownload"},
        )
        assert program.status_code == 422, program.text
        assert "content_type" in program.text

        # Another team's manager does not reach the ticket: its files are not found, like it.
        for response in (
            await other_manager.get(files),
            await other_manager.get(f"{files}/{invoice.json()['id']}"),
            await other_manager.post(
                files, params={"filename": "x.txt"}, content=b"x", headers={"Content-Type": "text/plain"}
            ),
        ):
            assert response.status_code == 404, response.text

        assert len((await agent.get(files)).json()["attachments"]) == 2
