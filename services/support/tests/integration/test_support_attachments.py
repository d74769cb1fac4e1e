"""Ticket attachments in process against real PostgreSQL and NATS, with a filesystem object store:
the rules (type, size, name, closed tickets, reach), the bytes' round trip and the stored hash."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select, text

from crm.support.v1 import support_pb2, support_pb2_grpc
from crm_kit.db import Database
from crm_kit.errors import FailedPrecondition
from crm_kit.grpc_client import channel
from crm_kit.testing import TEST_CALL_TIMEOUT_SECONDS, field_violations, free_port, reset_stream, running_service
from crm_support import attachments, domain, queries
from crm_support.db import messaging, ticket_attachments
from crm_support.main import MIGRATIONS_DIR, SupportSettings, setup

pytestmark = pytest.mark.integration

S = support_pb2
ALL = S.TicketReach(all_tickets=True)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@dataclass
class Desk:
    stub: support_pb2_grpc.SupportServiceStub
    db: Database
    root: Path


@pytest.fixture
async def desk(fresh_database, nats_server, tmp_path: Path) -> AsyncIterator[Desk]:
    await reset_stream(nats_server)
    port = free_port()
    database_url = await fresh_database("support")
    settings = SupportSettings(
        database_url=database_url,
        nats_url=nats_server,
        grpc_port=port,
        metrics_port=free_port(),
        sla_scan_interval_seconds=3600,
        object_store_url=f"file://{tmp_path}/attachments",
    )
    async with running_service(settings, messaging, MIGRATIONS_DIR, setup):
        # Room for the largest attachment's answer (gRPC's default client limit is 4 MiB).
        ch = channel(f"127.0.0.1:{port}", default_timeout=TEST_CALL_TIMEOUT_SECONDS, max_message_bytes=12 * 1024 * 1024)
        db = Database(database_url, messaging, source="/crm/support-test", pool_size=2)
        stub = support_pb2_grpc.SupportServiceStub(ch)
        await stub.UpdateQueue(
            S.UpdateQueueRequest(
                queue_id="complaints",
                strategy=S.ASSIGNMENT_STRATEGY_ROUND_ROBIN,
                member_ids=["agent-a"],
                team_id="team-service",
            )
        )
        yield Desk(stub, db, tmp_path / "attachments")
        await db.dispose()
        await ch.close()


async def open_complaint(desk: Desk) -> S.Ticket:
    reply = await desk.stub.OpenTicket(
        S.OpenTicketRequest(
            customer_id="cust-1",
            kind=S.TICKET_KIND_COMPLAINT,
            channel=S.TICKET_CHANNEL_PHONE,
            priority=S.TICKET_PRIORITY_HIGH,
            category_id="product.delivery",
            subject="הספה הגיעה שבורה",
            reach=ALL,
        )
    )
    return reply.ticket


def attach(ticket_id: str, **overrides: object) -> S.AddTicketAttachmentRequest:
    fields: dict[str, object] = {
        "ticket_id": ticket_id,
        "filename": "invoice.pdf",
        "content_type": "application/pdf",
        "data": PDF,
        "reach": ALL,
    }
    fields.update(overrides)
    return S.AddTicketAttachmentRequest(**fields)  # type: ignore[arg-type]


async def test_an_attachment_round_trips_its_bytes_and_keeps_their_hash(desk: Desk) -> None:
    ticket = await open_complaint(desk)
    photo = bytes(range(256)) * (5 * 1024 * 4)  # 5 MiB: more than gRPC's default message size
    added = (
        await desk.stub.AddTicketAttachment(
            attach(ticket.id, filename="C:\\Users\\dana\\תמונה של הספה.jpg", content_type="image/jpeg", data=photo)
        )
    ).attachment
    pdf = (await desk.stub.AddTicketAttachment(attach(ticket.id))).attachment
    assert added.filename == "תמונה של הספה.jpg"
    assert (added.content_type, added.size_bytes, added.sha256) == (
        "image/jpeg",
        len(photo),
        hashlib.sha256(photo).hexdigest(),
    )

    listed = (
        await desk.stub.ListTicketAttachments(S.ListTicketAttachmentsRequest(ticket_id=ticket.id, reach=ALL))
    ).attachments
    assert [a.id for a in listed] == [added.id, pdf.id]
    got = await desk.stub.GetTicketAttachment(
        S.GetTicketAttachmentRequest(ticket_id=ticket.id, attachment_id=added.id, reach=ALL)
    )
    assert got.data == photo and got.attachment.content_type == "image/jpeg"

    async with desk.db.unit_of_work() as uow:
        row = (await uow.conn.execute(select(ticket_attachments).where(ticket_attachments.c.id == pdf.id))).one()
        actions = (
            await uow.conn.execute(text("SELECT action FROM audit_log WHERE record_id = :id"), {"id": ticket.id})
        ).scalars()
        audited = set(actions)
    assert row.sha256 == hashlib.sha256(PDF).hexdigest()
    assert row.object_key.startswith(f"tickets/{ticket.id}/")
    assert (desk.root / row.object_key).read_bytes() == PDF
    assert "support.AddTicketAttachment" in audited


async def test_wrong_type_size_and_name_are_invalid_arguments_naming_the_field(desk: Desk) -> None:
    ticket = await open_complaint(desk)
    cases = [
        (attach(ticket.id, filename="setup.exe", content_type="application/x-msdownload"), "content_type"),
        (attach(ticket.id, data=b"x" * (domain.MAX_ATTACHMENT_BYTES + 1)), "data"),
        (attach(ticket.id, filename="a\x07b.pdf"), "filename"),
        (attach(ticket.id, filename="folder/"), "filename"),
        (attach(ticket.id, filename="x" * 201), "filename"),
    ]
    for request, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await desk.stub.AddTicketAttachment(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in field_violations(err.value)
    listed = await desk.stub.ListTicketAttachments(S.ListTicketAttachmentsRequest(ticket_id=ticket.id, reach=ALL))
    assert list(listed.attachments) == []
    assert not desk.root.exists() or not any(p.is_file() for p in desk.root.rglob("*"))


async def test_a_ticket_outside_the_reach_is_not_found(desk: Desk) -> None:
    ticket = await open_complaint(desk)
    added = (await desk.stub.AddTicketAttachment(attach(ticket.id))).attachment
    elsewhere = S.TicketReach(team_id="team-other")
    for call in (
        desk.stub.AddTicketAttachment(attach(ticket.id, reach=elsewhere)),
        desk.stub.ListTicketAttachments(S.ListTicketAttachmentsRequest(ticket_id=ticket.id, reach=elsewhere)),
        desk.stub.GetTicketAttachment(
            S.GetTicketAttachmentRequest(ticket_id=ticket.id, attachment_id=added.id, reach=elsewhere)
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # Another ticket's attachment id is not found under this ticket either.
    other = await open_complaint(desk)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await desk.stub.GetTicketAttachment(
            S.GetTicketAttachmentRequest(ticket_id=other.id, attachment_id=added.id, reach=ALL)
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_closed_ticket_takes_no_attachment(desk: Desk) -> None:
    ticket = await open_complaint(desk)
    for status in (S.TICKET_STATUS_RESOLVED, S.TICKET_STATUS_CLOSED):
        await desk.stub.ChangeTicketStatus(S.ChangeTicketStatusRequest(ticket_id=ticket.id, status=status, reach=ALL))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await desk.stub.AddTicketAttachment(attach(ticket.id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_without_an_object_store_attachments_are_not_configured(desk: Desk) -> None:
    ticket = await open_complaint(desk)
    new = domain.validate_attachment("a.txt", "text/plain", 3)
    with pytest.raises(FailedPrecondition, match="not configured"):
        await attachments.add(desk.db, None, ticket.id, queries.Reach(all_tickets=True), new, b"abc")
