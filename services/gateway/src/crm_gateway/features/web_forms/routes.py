"""Web-to-lead: the keys a site's contact form carries (/web-form-keys, admin and marketing), and
the public endpoint the form posts to with its key (/public/web-form-submissions).

No bearer token on the public endpoint: the web-to-lead key (a form field `key` or header
`X-Api-Key`) scopes the lead to the key's source and campaign, and the leads service refuses
unknown or revoked keys. Submissions are limited per visitor (key and client address), per IPv6
/48 and per key, counted only once the key is known to be real
(crm_gateway.platform.web_form_limits), and every refused key counts against the address's
budget for failed credentials; a filled honeypot field is accepted silently and dropped; the same
person submitting the same form twice on the same day is one lead (the submission's fingerprint
is the capture's request_id).
"""

from __future__ import annotations

import hashlib
import html
import logging
from datetime import UTC, datetime
from math import ceil
from typing import Any

import grpc
from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import Counter
from pydantic import ValidationError

from crm.leads.v1 import leads_pb2
from crm_gateway.clients import BackendClients
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, PageSize, PageToken, ResourceId, api_router
from crm_gateway.features.web_forms.schemas import (
    CreateWebFormKeyIn,
    WebFormAccepted,
    WebFormKey,
    WebFormKeyCreated,
    WebFormKeyList,
    WebFormSubmissionIn,
)
from crm_gateway.platform.auth import acting_for, refuse_anonymous_flood
from crm_gateway.platform.client_address import ClientAddresses
from crm_gateway.platform.problems import GRPC_TO_HTTP, PROBLEM_RESPONSES
from crm_gateway.platform.web_form_limits import WebFormLimits, key_digest
from crm_gateway.records import read
from crm_gateway.settings import GatewaySettings
from crm_kit import protoconv

log = logging.getLogger(__name__)

SUBMISSION_PATH = "/api/v1/public/web-form-submissions"
WEB_FORM_ACTOR = "web-form"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"

WEB_FORM_SUBMISSIONS = Counter(
    "crm_web_form_submissions_total", "Public web-to-lead submissions by outcome", ["outcome"]
)
# Every outcome exported from 0, so rate()/increase() see the first submission of each.
for _outcome in ("accepted", "invalid", "honeypot", "no_key", "bad_key", "rate_limited"):
    WEB_FORM_SUBMISSIONS.labels(_outcome)

router = api_router()
# No bearer token: the web-to-lead key is the credential (checked by the route itself).
public_router = APIRouter(prefix="/api/v1/public", responses=PROBLEM_RESPONSES)

_BODY_SCHEMA = {"$ref": "#/components/schemas/WebFormSubmissionIn"}


# ---------------------------------------------------------------- the keys (admin and marketing)


@router.post("/web-form-keys", status_code=201, tags=["web forms"], operation_id="createWebFormKey")
async def create_web_form_key(
    body: CreateWebFormKeyIn, clients: Clients, principal: Caller, request: Request
) -> WebFormKeyCreated:
    """A key for one public form, scoped to a source (and campaign). The secret and a ready-to-embed
    HTML form are in this response only: the key is stored hashed."""
    reply = await clients.leads.CreateWebFormKey(body.to_proto())
    settings: GatewaySettings = request.app.state.settings
    return WebFormKeyCreated(
        web_form_key=to_model(WebFormKey, reply.web_form_key),
        secret=reply.secret,
        html_snippet=html_snippet(settings.public_base_url, reply.secret),
    )


@router.get("/web-form-keys", tags=["web forms"], operation_id="listWebFormKeys")
async def list_web_form_keys(
    clients: Clients,
    principal: Caller,
    include_revoked: bool = False,
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> WebFormKeyList:
    reply = await read(
        clients.leads.ListWebFormKeys,
        leads_pb2.ListWebFormKeysRequest(
            page_size=protoconv.page_size(page_size), page_token=page_token, include_revoked=include_revoked
        ),
    )
    return to_model(WebFormKeyList, reply)


@router.post("/web-form-keys/{key_id}/revoke", tags=["web forms"], operation_id="revokeWebFormKey")
async def revoke_web_form_key(key_id: ResourceId, clients: Clients, principal: Caller) -> WebFormKey:
    """Submissions with the key are refused from now on."""
    reply = await clients.leads.RevokeWebFormKey(leads_pb2.RevokeWebFormKeyRequest(web_form_key_id=key_id))
    return to_model(WebFormKey, reply.web_form_key)


# ---------------------------------------------------------------- the public form


def html_snippet(base_url: str, secret: str) -> str:
    """A ready-to-embed HTML form (right-to-left, Hebrew labels) posting to the endpoint."""
    action = html.escape(base_url.rstrip("/") + SUBMISSION_PATH, quote=True)
    key = html.escape(secret, quote=True)
    return (
        f'<form method="post" action="{action}" dir="rtl" lang="he">\n'
        f'  <input type="hidden" name="key" value="{key}">\n'
        '  <label>שם מלא <input name="full_name" required maxlength="200"></label>\n'
        # A phone number or an e-mail address, either is enough (the gateway answers 422 for neither).
        '  <label>טלפון <input name="phone_number" type="tel" maxlength="32"></label>\n'
        '  <label>דוא"ל <input name="email" type="email" maxlength="254"></label>\n'
        '  <input type="hidden" name="locale" value="he-IL">\n'
        "  <!-- honeypot: hidden from people; a bot that fills it in is ignored -->\n"
        '  <div style="position:absolute;left:-10000px" aria-hidden="true">'
        '<input name="website" tabindex="-1" autocomplete="off"></div>\n'
        '  <button type="submit">שליחה</button>\n'
        "</form>\n"
    )


def fingerprint(key: str, form: WebFormSubmissionIn, now: datetime) -> str:
    """The same key, person and form on the same UTC day → the same request id (one lead)."""
    parts = [key, form.full_name.casefold(), form.phone_number, form.email.casefold(), form.product_line]
    digest = hashlib.sha256("\x1f".join([*parts, now.date().isoformat()]).encode()).hexdigest()
    return f"web-form:{digest[:48]}"


async def _fields(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == FORM_MEDIA_TYPE:
        form = await request.form(max_files=0, max_fields=20)
        return {name: value for name, value in form.items() if isinstance(value, str)}
    if content_type == "application/json":
        try:
            body = await request.json()
        except ValueError as exc:
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body",), "msg": "The body is not valid JSON."}]
            ) from exc
        if not isinstance(body, dict):
            raise RequestValidationError([{"type": "dict_type", "loc": ("body",), "msg": "Expected an object."}])
        return body
    raise HTTPException(415, f"Send {FORM_MEDIA_TYPE} or application/json.")


# Longer than any key the leads service issues (its own limit on a secret).
MAX_KEY_LENGTH = 200
# The leads service's one answer for a malformed, unknown or wrong key (crm_leads.web_forms.domain), given
# here too for a key refused before it is asked: the answer does not tell which check refused it.
INVALID_KEY_DETAIL = "web_form_key is not a valid web-to-lead key"


def _cannot_be_a_key(key: str) -> bool:
    """What no issued key looks like (keys are short printable ASCII): too long, or a NUL, control,
    non-ASCII or unencodable character, which the leads service would refuse as malformed."""
    return len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable())


def _refuses_the_key(code: grpc.StatusCode) -> bool:
    """Whether the leads service's answer to VerifyWebFormKey refuses the key itself (any 4xx:
    invalid, unknown, revoked…), rather than failing on its own side (5xx: down, too slow) or
    shedding load (429), which is no visitor's doing and costs nobody's budget."""
    status = GRPC_TO_HTTP.get(code, 500)
    return 400 <= status < 500 and status != 429


def _refused_key(request: Request) -> None:
    """A refused key is a failed credential like a bad token: it takes a token from the address's
    budget for requests without a valid credential (crm_gateway.platform.auth.refuse_anonymous_flood)."""
    WEB_FORM_SUBMISSIONS.labels("bad_key").inc()
    refuse_anonymous_flood(request)


async def _limited(request: Request, key: str) -> None:
    """Verify the key (once a minute; a bad one is refused as capture refuses it and fills no
    bucket), then take a token from the visitor's bucket, its network's and the key's."""
    limits: WebFormLimits = request.app.state.web_form_limits
    client_addresses: ClientAddresses = request.app.state.client_addresses
    malformed = _cannot_be_a_key(key)
    key_id = None if malformed else limits.known_keys.get(key_digest(key))
    if key_id is None:
        # Every refusal of a key counts against the address's budget for requests without a valid
        # credential, as a bad token does: once spent, the address's next unverified keys are 429
        # before they reach the leads service (a real, recently verified key is never counted).
        refuse_anonymous_flood(request, count=False)
        if malformed:
            _refused_key(request)
            raise HTTPException(403, INVALID_KEY_DETAIL)
        clients: BackendClients = request.app.state.clients
        try:
            with acting_for(request, WEB_FORM_ACTOR):
                verified = await clients.leads.VerifyWebFormKey(leads_pb2.VerifyWebFormKeyRequest(web_form_key=key))
        except grpc.aio.AioRpcError as exc:
            if _refuses_the_key(exc.code()):
                _refused_key(request)
            raise
        key_id = verified.web_form_key_id
        limits.known_keys.add(key_digest(key), key_id)
    wait, what = limits.take(key_id, client_addresses.of(request))
    if wait > 0:
        WEB_FORM_SUBMISSIONS.labels("rate_limited").inc()
        raise HTTPException(
            429,
            f"Too many submissions from this {what}; try again later.",
            headers={"Retry-After": str(max(1, ceil(wait)))},
        )


@public_router.post(
    "/web-form-submissions",
    status_code=202,
    tags=["web forms"],
    operation_id="submitWebForm",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM_MEDIA_TYPE: {"schema": _BODY_SCHEMA}, "application/json": {"schema": _BODY_SCHEMA}},
        },
        "security": [{"webFormKey": []}],
    },
)
async def submit_web_form(request: Request) -> WebFormAccepted:
    """A public form's submission. Needs a web-to-lead key (field `key` or header X-Api-Key);
    answers 202 without echoing any data."""
    fields = await _fields(request)
    key = request.headers.get("x-api-key", "") or str(fields.pop("key", "") or "")
    if not key:
        WEB_FORM_SUBMISSIONS.labels("no_key").inc()
        raise HTTPException(
            401,
            "A web-to-lead key is required (form field key or header X-Api-Key).",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    await _limited(request, key)
    try:
        form = WebFormSubmissionIn.model_validate(fields)
    except ValidationError as exc:
        WEB_FORM_SUBMISSIONS.labels("invalid").inc()
        raise RequestValidationError(exc.errors()) from exc
    if form.website:
        WEB_FORM_SUBMISSIONS.labels("honeypot").inc()
        client = str(request.app.state.client_addresses.of(request))
        log.info("web form honeypot filled; submission dropped", extra={"client": client})
        return WebFormAccepted()
    clients: BackendClients = request.app.state.clients
    # The audit log names the public form as the actor (the key's id is in the record's details).
    with acting_for(request, WEB_FORM_ACTOR):
        await clients.leads.CaptureLead(
            leads_pb2.CaptureLeadRequest(
                full_name=form.full_name,
                phone_number=form.phone_number,
                email=form.email,
                locale=form.locale,
                product_line=form.product_line,
                web_form_key=key,
                request_id=fingerprint(key, form, datetime.now(UTC)),
            )
        )
    WEB_FORM_SUBMISSIONS.labels("accepted").inc()
    return WebFormAccepted()
