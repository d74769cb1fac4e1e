"""Ticket attachments: the bytes go to the object store, the metadata to the database.

The two cannot share a transaction, so the order is chosen for what a failure leaves behind: the
object is written first, then its row (with the audit record) in one transaction; if that
transaction fails the object is deleted again. A failed delete leaves an orphan object nobody can
reach (no row names its key) and is logged with the key; a row never names a missing object."""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any

from crm_kit.db import Database
from crm_kit.errors import FailedPrecondition, Unavailable
from crm_kit.objectstore import ObjectNotFound, ObjectStore
from crm_support import commands, domain, queries

log = logging.getLogger(__name__)


def _configured(store: ObjectStore | None) -> ObjectStore:
    if store is None:
        raise FailedPrecondition("attachments are not configured", reason="ATTACHMENTS_NOT_CONFIGURED")
    return store


async def add(
    db: Database,
    store: ObjectStore | None,
    ticket_id: str,
    reach: queries.Reach,
    new: domain.NewAttachment,
    data: bytes,
) -> Any:
    """Store the file and record it on the ticket; the attachment's row."""
    store = _configured(store)
    # Refuse a ticket outside the reach, or closed, before any byte is written.
    async with db.unit_of_work() as uow:
        commands.refuse_closed(await queries.ticket(uow, reach, ticket_id=ticket_id), "attachments")
    key = f"tickets/{ticket_id}/{uuid.uuid4()}"
    await store.put(key, data, new.content_type)
    try:
        async with db.unit_of_work() as uow:
            return await commands.add_attachment(uow, ticket_id, reach, new, hashlib.sha256(data).hexdigest(), key)
    except BaseException:
        try:
            await store.delete(key)
        except Exception:
            log.exception("an attachment's object outlived its failed transaction", extra={"object_key": key})
        raise


async def listed(db: Database, ticket_id: str, reach: queries.Reach) -> list[Any]:
    """The ticket's attachments (metadata only), oldest first; NOT_FOUND outside the reach."""
    async with db.unit_of_work() as uow:
        await queries.ticket(uow, reach, ticket_id=ticket_id)
        return await queries.attachments(uow, ticket_id)


async def fetched(
    db: Database, store: ObjectStore | None, ticket_id: str, attachment_id: int, reach: queries.Reach
) -> tuple[Any, bytes]:
    """One attachment and its bytes; NOT_FOUND outside the reach or on another ticket."""
    store = _configured(store)
    async with db.unit_of_work() as uow:
        await queries.ticket(uow, reach, ticket_id=ticket_id)
        row = await queries.attachment(uow, ticket_id, attachment_id)
    try:
        data, _ = await store.get(row.object_key)
    except ObjectNotFound as exc:
        # A row always follows its object (module docstring): a missing one means the store lost it.
        log.error("an attachment's object is missing from the store", extra={"object_key": row.object_key})
        raise Unavailable("the attachment's file cannot be read from storage right now") from exc
    return row, data
