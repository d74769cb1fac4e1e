"""Reading web-to-lead keys: a secret's key (the check every public capture passes), and the list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from crm_kit.db import UnitOfWork
from crm_kit.pagination import keyset_page
from crm_leads.db import web_form_keys
from crm_leads.web_forms import domain


@dataclass(frozen=True)
class WebFormKeyUse:
    """What a verified web-to-lead key gives a capture."""

    id: str
    source: str
    campaign: str


async def verify_web_form_key(uow: UnitOfWork, secret: str) -> WebFormKeyUse:
    """The active key a secret belongs to; PermissionDenied for a malformed, unknown, wrong or revoked one."""
    key_id = domain.web_form_key_id(secret)
    row = (
        await uow.conn.execute(
            select(
                web_form_keys.c.secret_hash,
                web_form_keys.c.source,
                web_form_keys.c.campaign,
                web_form_keys.c.revoked_at,
            ).where(web_form_keys.c.id == key_id)
        )
    ).first()
    if row is None or not domain.web_form_secret_matches(secret, row.secret_hash):
        raise domain.invalid_web_form_key()
    if row.revoked_at is not None:
        raise domain.web_form_key_refused(known=True)
    return WebFormKeyUse(id=key_id, source=row.source, campaign=row.campaign)


async def list_web_form_keys(
    uow: UnitOfWork, *, limit: int, after: tuple[Any, ...] | None, include_revoked: bool
) -> tuple[list[Any], list[Any] | None]:
    """Keys newest first; revoked ones only when asked for."""
    query = select(web_form_keys)
    if not include_revoked:
        query = query.where(web_form_keys.c.revoked_at.is_(None))
    return await keyset_page(
        uow.conn, query, web_form_keys.c.created_at, web_form_keys.c.id, limit=limit, after=after, descending=True
    )


async def key_exists(uow: UnitOfWork, key_id: str) -> bool:
    return (await uow.conn.execute(select(web_form_keys.c.id).where(web_form_keys.c.id == key_id))).first() is not None
