"""Sources, campaigns and CSV imports in the leads service, against real PostgreSQL and NATS."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import nats
import pytest
from google.protobuf import field_mask_pb2
from sqlalchemy import func, select, update

from crm.common.v1 import types_pb2
from crm.leads.v1 import (
    campaigns_pb2,
    campaigns_pb2_grpc,
    events_pb2,
    imports_pb2,
    imports_pb2_grpc,
    leads_pb2,
    leads_pb2_grpc,
)
from crm_kit.service import Service
from crm_kit.testing import eventually, local_channel
from crm_leads.db import lead_import_rows, lead_imports, leads
from crm_leads.imports import commands as import_commands
from crm_leads.imports.domain import COMPLETED, IMPORTING, ImportLimits
from crm_leads.imports.queries import get_import

pytestmark = pytest.mark.integration


@pytest.fixture
async def service(leads_server) -> AsyncIterator[Service]:
    async with leads_server(
        import_batch_rows=2,
    ) as running:
        yield running


class Stubs:
    def __init__(self, ch: grpc.aio.Channel) -> None:
        self.leads = leads_pb2_grpc.LeadsServiceStub(ch)
        self.campaigns = campaigns_pb2_grpc.CampaignsServiceStub(ch)
        self.imports = imports_pb2_grpc.LeadImportsServiceStub(ch)


@pytest.fixture
async def api(service: Service) -> AsyncIterator[Stubs]:
    ch = local_channel(service.settings.grpc_port)
    yield Stubs(ch)
    await ch.close()


def ils(amount: int) -> types_pb2.Money:
    return types_pb2.Money(amount_minor=amount, currency_code="ILS")


async def new_campaign(api: Stubs, name: str = "רדיו חורף", source: str = "radio") -> campaigns_pb2.Campaign:
    reply = await api.campaigns.CreateCampaign(
        campaigns_pb2.CreateCampaignRequest(
            source=source,
            name=name,
            starts_on=types_pb2.Date(year=2026, month=12, day=1),
            ends_on=types_pb2.Date(year=2027, month=1, day=31),
            budget=ils(5_000_000),
        )
    )
    return reply.campaign


def violations(exc: grpc.aio.AioRpcError) -> str:
    return exc.details() or ""


async def test_the_source_catalogue_is_in_the_database(api: Stubs) -> None:
    listed = (await api.leads.ListSources(leads_pb2.ListSourcesRequest())).sources
    assert {"radio", "tv", "website", "import"} <= {s.code for s in listed}
    assert all(s.built_in and s.active for s in listed)

    added = (
        await api.campaigns.CreateSource(campaigns_pb2.CreateSourceRequest(code="podcast", display_name="פודקאסט"))
    ).source
    assert (added.code, added.built_in) == ("podcast", False)
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await api.campaigns.CreateSource(campaigns_pb2.CreateSourceRequest(code="podcast", display_name="x"))
    assert again.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await api.campaigns.CreateSource(campaigns_pb2.CreateSourceRequest(code="Pod cast", display_name=""))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    lead = (
        await api.leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(full_name="נועה", phone_number="052-1112233", source="podcast")
        )
    ).lead
    assert lead.source == "podcast" and lead.assignment.rep_id
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await api.leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(full_name="x", phone_number="052-1112234", source="tiktok")
        )
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "podcast" in violations(unknown.value)


async def test_campaigns_with_cost_are_created_updated_and_published(api: Stubs, nats_server) -> None:
    campaign = await new_campaign(api)
    assert campaign.budget.amount_minor == 5_000_000 and campaign.budget.currency_code == "ILS"
    with pytest.raises(grpc.aio.AioRpcError) as same_name:
        await new_campaign(api)
    assert same_name.value.code() == grpc.StatusCode.ALREADY_EXISTS
    await new_campaign(api, source="tv")  # the same name under another source is another campaign
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await api.campaigns.CreateCampaign(
            campaigns_pb2.CreateCampaignRequest(
                source="radio",
                name="",
                starts_on=types_pb2.Date(year=2026, month=12, day=2),
                ends_on=types_pb2.Date(year=2026, month=12, day=1),
                budget=types_pb2.Money(amount_minor=-5, currency_code="ILS"),
            )
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for name in ("name", "ends_on", "budget.amount_minor"):
        assert name in violations(bad.value)

    updated = (
        await api.campaigns.UpdateCampaign(
            campaigns_pb2.UpdateCampaignRequest(
                campaign=campaigns_pb2.Campaign(id=campaign.id, actual_cost=ils(1_250_000), name="ignored"),
                update_mask=field_mask_pb2.FieldMask(paths=["actual_cost"]),
            )
        )
    ).campaign
    assert updated.actual_cost.amount_minor == 1_250_000
    assert updated.name == campaign.name and updated.budget.amount_minor == 5_000_000
    with pytest.raises(grpc.aio.AioRpcError) as bad_mask:
        await api.campaigns.UpdateCampaign(
            campaigns_pb2.UpdateCampaignRequest(
                campaign=campaigns_pb2.Campaign(id=campaign.id), update_mask=field_mask_pb2.FieldMask(paths=["source"])
            )
        )
    assert bad_mask.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    radio = (await api.campaigns.ListCampaigns(campaigns_pb2.ListCampaignsRequest(source="radio"))).campaigns
    assert [c.id for c in radio] == [campaign.id]

    nc = await nats.connect(nats_server)
    try:
        sub = await nc.jetstream().pull_subscribe("crm.leads.campaign_changed", durable="test-campaigns")
        msgs = await sub.fetch(3, timeout=10)
        changes = [events_pb2.CampaignChanged.FromString(m.data) for m in msgs]
        assert [c.actual_cost.amount_minor for c in changes if c.campaign_id == campaign.id] == [0, 1_250_000]
    finally:
        await nc.close()


async def test_a_capture_names_its_campaign_by_name_or_id(api: Stubs) -> None:
    campaign = await new_campaign(api)
    by_name = (
        await api.leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(
                full_name="דנה", phone_number="050-2223344", source="radio", campaign=" רדיו  חורף "
            )
        )
    ).lead
    by_id = (
        await api.leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(
                full_name="علی", phone_number="0912 111 2233", source="radio", campaign=campaign.id
            )
        )
    ).lead
    assert by_name.campaign_id == by_id.campaign_id == campaign.id
    assert by_name.campaign == "רדיו חורף"
    listed = (await api.leads.ListLeads(leads_pb2.ListLeadsRequest(campaign_id=campaign.id))).leads
    assert {lead.id for lead in listed} == {by_name.id, by_id.id}

    for source, name in (("radio", "no such campaign"), ("tv", campaign.id)):
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await api.leads.CaptureLead(
                leads_pb2.CaptureLeadRequest(full_name="x", phone_number="050-9998877", source=source, campaign=name)
            )
        assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "campaign" in violations(unknown.value)


def chunks(
    header: imports_pb2.ImportLeadsHeader, data: bytes, size: int = 7, *, complete: bool = True
) -> list[imports_pb2.ImportLeadsRequest]:
    trailer = [imports_pb2.ImportLeadsRequest(trailer=imports_pb2.ImportLeadsTrailer(size=len(data)))]
    return (
        [imports_pb2.ImportLeadsRequest(header=header)]
        + [imports_pb2.ImportLeadsRequest(data=data[i : i + size]) for i in range(0, len(data), size)]
        + (trailer if complete else [])
    )


async def upload(api: Stubs, data: bytes, complete: bool = True, **header: object) -> imports_pb2.LeadImport:
    messages = chunks(imports_pb2.ImportLeadsHeader(**header), data, complete=complete)  # type: ignore[arg-type]
    reply = await api.imports.ImportLeads(iter(messages))
    return reply.lead_import


def phone() -> str:
    return f"054-{uuid.uuid4().int % 10_000_000:07d}"


GOOD = (
    "\ufefffull_name,phone_number,city,locale\n"
    f"דנה כהן,{phone()},תל אביב,he-IL\n"
    f'"علی ""رضایی""",0912 {uuid.uuid4().int % 1000:03d} {uuid.uuid4().int % 10000:04d},"تهران\nمرکز",fa-IR\n'
    f"משה לוי,{phone()},חיפה,\n"
    f"שרה,{phone()},,\n"
    f"רות,{phone()},,\n"
)


async def completed(api: Stubs, import_id: str) -> imports_pb2.LeadImport:
    async def done() -> imports_pb2.LeadImport | None:
        got = (await api.imports.GetLeadImport(imports_pb2.GetLeadImportRequest(lead_import_id=import_id))).lead_import
        return got if got.status == imports_pb2.LEAD_IMPORT_STATUS_COMPLETED else None

    result: imports_pb2.LeadImport = await eventually(done)
    return result


async def test_an_import_captures_every_row_routed_to_a_rep(api: Stubs) -> None:
    campaign = await new_campaign(api)
    report = await upload(
        api, GOOD.encode(), source="radio", campaign="רדיו חורף", file_name="חורף.csv", request_id="imp-1"
    )
    assert report.status in (imports_pb2.LEAD_IMPORT_STATUS_IMPORTING, imports_pb2.LEAD_IMPORT_STATUS_COMPLETED)
    assert (report.rows_read, report.rows_valid, report.error_count) == (5, 5, 0)
    final = await completed(api, report.id)
    assert (final.rows_imported, final.duplicates) == (5, 0)
    listed = (await api.leads.ListLeads(leads_pb2.ListLeadsRequest(campaign_id=campaign.id))).leads
    assert len(listed) == 5
    assert all(lead.assignment.rep_id and lead.source == "radio" for lead in listed)
    persian = next(lead for lead in listed if lead.locale == "fa-IR")
    assert persian.full_name == 'علی "رضایی"' and persian.phone_number.startswith("+98")

    again = await upload(api, b"anything", source="radio", request_id="imp-1")
    assert again.id == report.id
    imported = (await api.imports.ListLeadImports(imports_pb2.ListLeadImportsRequest())).lead_imports
    assert [i.id for i in imported] == [report.id]


BAD = f'full_name,phone_number,email\nדנה כהן,{phone()},\n,12,"not an\nemail"\nמשה,{phone()},\nרק שם,,\n'


async def test_a_file_with_bad_rows_reports_each_and_creates_nothing(api: Stubs, service: Service) -> None:
    report = await upload(api, BAD.encode(), source="radio")
    assert report.status == imports_pb2.LEAD_IMPORT_STATUS_REJECTED
    assert report.rows_read == 4 and report.rows_imported == 0
    errors = [(e.row_number, e.line_number, e.field) for e in report.errors]
    assert (2, 3, "full_name") in errors and (2, 3, "phone_number") in errors and (2, 3, "email") in errors
    # a row with neither a phone number nor an e-mail names both (either one is enough)
    assert (4, 6, "phone_number") in errors and (4, 6, "email") in errors
    assert report.error_count == len(report.errors) == 5
    async with service.db.unit_of_work() as uow:
        assert (await uow.conn.execute(select(func.count()).select_from(leads))).scalar() == 0
        assert (await uow.conn.execute(select(func.count()).select_from(lead_import_rows))).scalar() == 0


async def test_an_import_rows_request_id_is_nobody_elses(api: Stubs) -> None:
    """A row was captured as `import:<import id>:<row>` company-wide, so anyone who knew the import's
    id could replay a row's request id and read its lead. Rows now live in the import's scope."""
    row_phone = phone()
    report = await upload(api, f"full_name,phone_number\nדנה כהן,{row_phone}\n".encode(), source="radio")
    final = await completed(api, report.id)
    assert final.rows_imported == 1
    [row_lead] = (await api.leads.ListLeads(leads_pb2.ListLeadsRequest())).leads

    as_mallory = (("x-crm-actor", "user:mallory"),)
    for request_id in (f"import:{report.id}:1", "1"):
        claimed = await api.leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(
                full_name="Mallory", phone_number=phone(), source="radio", request_id=request_id
            ),
            metadata=as_mallory,
        )
        # Mallory's own new lead, not the row's: the old row id replays nothing.
        assert not claimed.duplicate and claimed.lead.id != row_lead.id
    again = await api.leads.CaptureLead(
        leads_pb2.CaptureLeadRequest(full_name="Mallory", phone_number=phone(), source="radio", request_id="1"),
        metadata=as_mallory,
    )
    assert again.lead.id == claimed.lead.id  # her own request id still replays her own capture


async def test_an_uploads_request_id_is_the_uploaders_own(api: Stubs) -> None:
    data = f"full_name,phone_number\nדנה כהן,{phone()}\n".encode()
    messages = chunks(imports_pb2.ImportLeadsHeader(source="radio", request_id="list-1"), data)
    alice = (await api.imports.ImportLeads(iter(messages), metadata=(("x-crm-actor", "alice"),))).lead_import
    other = f"full_name,phone_number\nמשה לוי,{phone()}\n".encode()
    messages = chunks(imports_pb2.ImportLeadsHeader(source="radio", request_id="list-1"), other)
    bob = (await api.imports.ImportLeads(iter(messages), metadata=(("x-crm-actor", "bob"),))).lead_import
    messages = chunks(imports_pb2.ImportLeadsHeader(source="radio", request_id="list-1"), data)
    alice_again = (await api.imports.ImportLeads(iter(messages), metadata=(("x-crm-actor", "alice"),))).lead_import

    assert bob.id != alice.id and alice_again.id == alice.id
    assert (await completed(api, bob.id)).rows_imported == 1


async def test_skip_invalid_imports_the_good_rows(api: Stubs) -> None:
    report = await upload(api, BAD.encode(), source="radio", mode=imports_pb2.LEAD_IMPORT_MODE_SKIP_INVALID)
    final = await completed(api, report.id)
    assert (final.rows_valid, final.rows_imported, final.error_count) == (2, 2, 5)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("full_name,tel,city\nדנה,050,x\n".encode(), "'tel'"),
        (b"city\nx\n", "full_name"),
        ("full_name,phone_number\nדנה,050\n".encode("utf-16"), "UTF-8"),
        (b"", "empty"),
    ],
)
async def test_a_broken_file_is_rejected(api: Stubs, data: bytes, words: str) -> None:
    report = await upload(api, data, source="radio", mode=imports_pb2.LEAD_IMPORT_MODE_SKIP_INVALID)
    assert report.status == imports_pb2.LEAD_IMPORT_STATUS_REJECTED
    assert words in report.reject_reason


async def test_an_upload_cut_short_imports_nothing(api: Stubs, service: Service) -> None:
    report = await upload(api, GOOD.encode(), complete=False, source="radio")
    assert report.status == imports_pb2.LEAD_IMPORT_STATUS_REJECTED
    assert "interrupted" in report.reject_reason
    async with service.db.unit_of_work() as uow:
        assert (await uow.conn.execute(select(func.count()).select_from(leads))).scalar() == 0


async def test_an_unknown_campaign_or_source_refuses_the_upload(api: Stubs) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await upload(api, GOOD.encode(), source="radio", campaign="nope")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "campaign" in violations(err.value)


async def test_an_import_interrupted_in_phase_2_resumes_without_capturing_twice(service: Service) -> None:
    limits = ImportLimits(batch_rows=2, lease_seconds=60)
    async with service.db.unit_of_work() as uow:
        row = (
            await uow.conn.execute(
                lead_imports.insert()
                .values(
                    id=str(uuid.uuid4()),
                    source="radio",
                    mode="all_or_nothing",
                    status="validating",
                    lease_until=datetime.now(UTC) + timedelta(minutes=5),
                )
                .returning(lead_imports)
            )
        ).one()

    async def body() -> AsyncIterator[bytes]:
        yield GOOD.encode()

    status, _ = await import_commands.read_and_stage(service.db, row, body(), limits)
    assert status == IMPORTING
    assert await import_commands.capture_batch(service.db, row.id, limits)  # one batch, then the process "dies"
    async with service.db.unit_of_work() as uow:
        # As if the second batch's commit had been lost after its captures: the cursor goes back.
        await uow.conn.execute(
            update(lead_imports).where(lead_imports.c.id == row.id).values(next_row=0, lease_until=func.now())
        )
    assert await import_commands.resume_imports(service.db, limits) == 1
    async with service.db.unit_of_work() as uow:
        final, _ = await get_import(uow, row.id)
        count = (await uow.conn.execute(select(func.count()).select_from(leads))).scalar()
    assert final.status == COMPLETED
    assert count == 5
    assert final.rows_imported == 5 + 2  # the two rows of the replayed batch count again, never twice as leads


async def test_progress_is_visible_while_the_file_is_read(service: Service) -> None:
    """Phase 1 commits its counters batch by batch: another connection sees them before the end."""
    limits = ImportLimits(batch_rows=50, lease_seconds=60)
    async with service.db.unit_of_work() as uow:
        row = (
            await uow.conn.execute(
                lead_imports.insert()
                .values(
                    id=str(uuid.uuid4()),
                    source="radio",
                    mode="skip_invalid",
                    status="validating",
                    lease_until=datetime.now(UTC) + timedelta(minutes=5),
                )
                .returning(lead_imports)
            )
        ).one()
    seen: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        yield b"full_name,phone_number\n"
        for batch in range(4):
            yield "".join(f"דנה {batch}-{i},{phone()}\n" for i in range(60)).encode()
            async with service.db.unit_of_work() as other:
                seen.append(
                    (
                        await other.conn.execute(select(lead_imports.c.rows_read).where(lead_imports.c.id == row.id))
                    ).scalar_one()
                )

    status, state = await import_commands.read_and_stage(service.db, row, body(), limits)
    assert status == IMPORTING and state.rows_read == 240
    assert seen == [60, 120, 180, 240]  # each chunk of 60 rows filled a batch of 50: committed at once
