"""Web-to-lead through the running system: a marketing user creates a key, a public form posts
with it, the lead lands with the key's source and campaign; duplicates, bots, revoked keys and a
flood from a leaked key are handled."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Stack

pytestmark = pytest.mark.e2e

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def marketing(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = stack.auth_headers("marketing")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=headers) as client:
        yield client


@pytest.fixture
async def public(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A browser on someone's web site: no token."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15) as client:
        yield client


async def new_key(marketing: httpx.AsyncClient, campaign: str) -> dict[str, Any]:
    # A key names a campaign of the catalogue: create it first (409: an earlier test did).
    created = await marketing.post("/api/v1/campaigns", json={"source": "web_form", "name": campaign})
    assert created.status_code in (201, 409), created.text
    response = await marketing.post(
        "/api/v1/web-form-keys", json={"display_name": f"אתר — {campaign}", "source": "web_form", "campaign": campaign}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def form(secret: str, phone: str, **extra: str) -> dict[str, str]:
    # One person per phone number: an e-mail shared across tests would make every later test's
    # submission a touch of the first test's lead (the duplicate check matches e-mails too).
    email = f"michal.{''.join(c for c in phone if c.isdigit())}@example.co.il"
    return {"key": secret, "full_name": "מיכל ברק", "phone_number": phone, "email": email, **extra}


async def leads_with_phone(api: httpx.AsyncClient, e164: str) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/leads", params={"source": "web_form", "page_size": 100})
    assert response.status_code == 200
    found: list[dict[str, Any]] = []
    page = response.json()
    while True:
        found += [lead for lead in page["leads"] if lead["phone_number"] == e164]
        if not page["next_page_token"]:
            return found
        page = (
            await api.get(
                "/api/v1/leads",
                params={"source": "web_form", "page_size": 100, "page_token": page["next_page_token"]},
            )
        ).json()


def phone() -> tuple[str, str]:
    digits = f"{uuid.uuid4().int % 10_000_000:07d}"
    return f"054-{digits}", f"+97254{digits}"


async def test_a_form_post_becomes_one_lead_with_the_keys_source_and_campaign(
    marketing: httpx.AsyncClient, public: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    created = await new_key(marketing, "spring-sale")
    secret = created["secret"]
    local, e164 = phone()

    first = await public.post("/api/v1/public/web-form-submissions", data=form(secret, local))
    again = await public.post("/api/v1/public/web-form-submissions", data=form(secret, local))

    assert first.status_code == 202, first.text
    assert first.json() == {"status": "accepted"}
    assert again.status_code == 202
    [lead] = await leads_with_phone(api, e164)
    assert (lead["source"], lead["campaign"]) == ("web_form", "spring-sale")
    assert lead["assignment"]["rep_id"]
    # The secret is shown once: lists show only its prefix.
    listed = (await marketing.get("/api/v1/web-form-keys")).json()["web_form_keys"]
    mine = next(k for k in listed if k["id"] == created["web_form_key"]["id"])
    assert secret not in str(listed)
    assert secret.startswith(mine["secret_prefix"])
    audit = (await api.get("/api/v1/audit-records", params={"service": "leads", "record_id": lead["id"]})).json()
    assert [(r["actor"], r["action"]) for r in audit["audit_records"]] == [("web-form", "leads.CaptureLead")]
    assert audit["audit_records"][0]["request_id"] == first.headers["x-request-id"]
    assert f'value="{secret}"' in created["html_snippet"]
    assert 'name="website"' in created["html_snippet"]


async def test_json_with_the_key_in_a_header_works_too(
    marketing: httpx.AsyncClient, public: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    secret = (await new_key(marketing, "json"))["secret"]
    local, e164 = phone()
    body = {"full_name": "Reza Ahmadi", "phone_number": local, "locale": "en-US"}

    response = await public.post("/api/v1/public/web-form-submissions", json=body, headers={"X-Api-Key": secret})

    assert response.status_code == 202, response.text
    assert len(await leads_with_phone(api, e164)) == 1


async def test_a_filled_honeypot_is_accepted_and_dropped(
    marketing: httpx.AsyncClient, public: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    secret = (await new_key(marketing, "bots"))["secret"]
    local, e164 = phone()

    response = await public.post(
        "/api/v1/public/web-form-submissions", data=form(secret, local, website="http://spam.example")
    )

    assert response.status_code == 202
    assert await leads_with_phone(api, e164) == []


@pytest.mark.parametrize("secret", ["", "wfk_nope_nope", "garbage"])
async def test_a_missing_or_unknown_key_is_refused(public: httpx.AsyncClient, secret: str) -> None:
    local, _ = phone()

    response = await public.post("/api/v1/public/web-form-submissions", data=form(secret, local))

    assert response.status_code in (401, 403)
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_revoked_key_is_refused_at_once(
    marketing: httpx.AsyncClient, public: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    created = await new_key(marketing, "revoked")
    revoked = await marketing.post(f"/api/v1/web-form-keys/{created['web_form_key']['id']}/revoke")
    local, e164 = phone()

    response = await public.post("/api/v1/public/web-form-submissions", data=form(created["secret"], local))

    assert revoked.status_code == 200
    assert revoked.json()["revoke_time"]
    assert response.status_code == 403
    assert await leads_with_phone(api, e164) == []


async def test_bad_fields_are_422_naming_them(marketing: httpx.AsyncClient, public: httpx.AsyncClient) -> None:
    secret = (await new_key(marketing, "bad"))["secret"]

    response = await public.post(
        "/api/v1/public/web-form-submissions", data={"key": secret, "full_name": "", "phone_number": "1"}
    )
    wrong_type = await public.post(
        "/api/v1/public/web-form-submissions", content=b"<xml/>", headers={"Content-Type": "text/xml"}
    )

    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} >= {"full_name", "phone_number"}
    assert wrong_type.status_code == 415


async def test_a_flood_from_a_leaked_key_is_limited_and_creates_no_extra_leads(
    marketing: httpx.AsyncClient, public: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    """The visitor's bucket (key and address: burst 5, 2/min) stops a flood from one address: 429
    with Retry-After. The gateway trusts no proxy here, so a made-up X-Forwarded-For on every post
    does not make the flood a crowd; the same person flooding the same form is still one lead."""
    secret = (await new_key(marketing, "leaked"))["secret"]
    local, e164 = phone()

    statuses = [
        (
            await public.post(
                "/api/v1/public/web-form-submissions",
                data=form(secret, local),
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            )
        ).status_code
        for n in range(40)
    ]
    limited = await public.post("/api/v1/public/web-form-submissions", data=form(secret, local))

    assert statuses.count(202) <= 6  # the burst, plus what refilled meanwhile
    assert statuses.count(429) >= 34
    assert set(statuses) <= {202, 429}
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert len(await leads_with_phone(api, e164)) == 1


async def test_a_flood_of_made_up_keys_leaves_a_real_keys_budget_whole(
    marketing: httpx.AsyncClient, public: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    """Only a key the leads service knows is counted: guessing keys spends nobody's budget."""
    secret = (await new_key(marketing, "guessed"))["secret"]
    local, _ = phone()
    guesses = [
        await public.post("/api/v1/public/web-form-submissions", data=form(f"wfk_{uuid.uuid4()}_{n}", local))
        for n in range(20)
    ]

    accepted = [
        (await public.post("/api/v1/public/web-form-submissions", data=form(secret, phone()[0]))).status_code
        for _ in range(5)
    ]

    assert {g.status_code for g in guesses} == {403}
    assert guesses[0].json()["detail"] == "web_form_key is not a valid web-to-lead key"
    assert accepted == [202] * 5
