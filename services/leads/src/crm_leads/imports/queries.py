"""Reading CSV imports: one import with its stored errors, the list, an uploader's earlier upload."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm_kit.db import UnitOfWork
from crm_kit.errors import NotFound
from crm_kit.pagination import keyset_page
from crm_leads.db import lead_import_errors, lead_imports


def _not_found(import_id: str) -> NotFound:
    return NotFound(
        f"lead import {import_id} not found", reason="LEAD_IMPORT_NOT_FOUND", metadata={"lead_import_id": import_id}
    )


async def get_import(uow: UnitOfWork, import_id: str) -> tuple[Any, list[Any]]:
    row = (await uow.conn.execute(select(lead_imports).where(lead_imports.c.id == import_id))).first()
    if row is None:
        raise _not_found(import_id)
    errors = (
        await uow.conn.execute(
            select(lead_import_errors)
            .where(lead_import_errors.c.import_id == import_id)
            .order_by(lead_import_errors.c.position)
        )
    ).all()
    return row, list(errors)


async def find_upload(uow: UnitOfWork, actor: str, request_id: str) -> Any | None:
    """The import an uploader's request_id started (another caller's equal id is another import)."""
    same_request = (lead_imports.c.create_actor == actor, lead_imports.c.request_id == request_id)
    return (await uow.conn.execute(select(lead_imports).where(*same_request))).first()


async def list_imports(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None
) -> tuple[list[Any], list[Any] | None]:
    """Imports newest first."""
    return await keyset_page(
        uow.conn,
        select(lead_imports),
        lead_imports.c.created_at,
        lead_imports.c.id,
        limit=limit,
        after=after,
        descending=True,
    )
