"""Web-to-lead keys: create and revoke them. (A capture holds its key active to its end: the key
row is share-locked by crm_leads.leads.capture_statements.opening.)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from crm_kit import caller
from crm_kit.db import UnitOfWork
from crm_kit.errors import FailedPrecondition, NotFound
from crm_leads.db import web_form_keys
from crm_leads.web_forms import domain, queries


def _web_form_key_not_found(key_id: str) -> NotFound:
    return NotFound(
        f"web form key {key_id} not found", reason="WEB_FORM_KEY_NOT_FOUND", metadata={"web_form_key_id": key_id}
    )


async def create_web_form_key(uow: UnitOfWork, new: domain.NewWebFormKey) -> tuple[Any, str]:
    """Store a new key (its secret's hash and prefix); returns the row and the secret, shown this once."""
    key_id = str(uuid.uuid4())
    secret = domain.new_web_form_secret(key_id)
    who = caller.current()
    row = (
        await uow.conn.execute(
            web_form_keys.insert()
            .values(
                id=key_id,
                display_name=new.display_name,
                source=new.source,
                campaign=new.campaign,
                secret_hash=domain.hash_web_form_secret(secret),
                secret_prefix=domain.web_form_secret_prefix(secret),
                create_actor=(who.actor if who else "") or caller.UNKNOWN_ACTOR,
                created_at=datetime.now(UTC),
            )
            .returning(web_form_keys)
        )
    ).one()
    # Never the secret (nor its hash) in the audit log.
    uow.audit(
        "leads.CreateWebFormKey",
        "web_form_key",
        key_id,
        {
            "display_name": new.display_name,
            "source": new.source,
            "campaign": new.campaign,
            "secret_prefix": row.secret_prefix,
        },
    )
    return row, secret


async def revoke_web_form_key(uow: UnitOfWork, key_id: str) -> Any:
    """Revoke an active key: captures with it are refused from now on."""
    revoked = (
        await uow.conn.execute(
            update(web_form_keys)
            .where(web_form_keys.c.id == key_id, web_form_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
            .returning(web_form_keys)
        )
    ).first()
    if revoked is None:
        if not await queries.key_exists(uow, key_id):
            raise _web_form_key_not_found(key_id)
        raise FailedPrecondition(
            f"web form key {key_id} is already revoked",
            reason="WEB_FORM_KEY_ALREADY_REVOKED",
            metadata={"web_form_key_id": key_id},
        )
    uow.audit("leads.RevokeWebFormKey", "web_form_key", key_id, {"secret_prefix": revoked.secret_prefix})
    return revoked
