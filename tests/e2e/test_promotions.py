"""Promotions end to end, as separate processes: marketing builds an audience of customers who
bought a sofa in the last year and consented to advertising, sends a Persian and Hebrew SMS (the
Persian one with a Jalali date in Persian digits) and a Hebrew e-mail with one-click unsubscribe;
delivery receipts come back signed through the gateway; a recipient replies "הסר", is confirmed
once and gets nothing more; the report counts it all and what it cost. Every message reaches the
local fakes exactly once."""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest

from crm_devstack.stack import SMS_CALLBACK_SECRET, Stack
from crm_kit import signatures
from crm_kit.testing import eventually

pytestmark = pytest.mark.e2e

SOFA = [
    {
        "sku": "SOFA-3",
        "description": "ספה תלת-מושבית",
        "quantity": 1,
        "unit_price": {"amount_minor": 459900, "currency_code": "ILS"},
    }
]
LAMP = [
    {
        "sku": "LAMP-1",
        "description": "מנורה",
        "quantity": 1,
        "unit_price": {"amount_minor": 19900, "currency_code": "ILS"},
    }
]
HE_SMS = "פרסומת: {name}, כריות במתנה לרוכשי ספות עד {date}! {advertiser} {advertiser_contact}. להסרה השיבו הסר"
HE_SMS_B = "פרסומת: {name}, כרית במתנה לכל ספה עד {date}! {advertiser} {advertiser_contact}. להסרה השיבו הסר"
HE_SMS_LINK = "פרסומת: {name}, כריות במתנה עד {date}: {link} {advertiser} {advertiser_contact}. להסרה השיבו הסר"
LANDING = "https://furniture.example/sofas?ref=crm"
# The longest any wait may take on a loaded machine (the shared stack runs every e2e test); tests
# never assert durations.
PATIENCE = 90.0
# Israel's rules apply to every advertising SMS the company sends, in any language.
FA_SMS = "פרסומת: {name} عزیز، کوسن هدیه تا {date}. {advertiser} {advertiser_contact}. برای لغو: STOP"
HE_EMAIL_SUBJECT = "פרסומת: כריות במתנה"
HE_EMAIL = (
    "שלום {name},\n\nכריות במתנה לרוכשי ספות עד {date:long}.\n{advertiser} {advertiser_contact}\n\n"
    "להסרה: {unsubscribe_link}"
)


def unique_phone(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().int % 10_000_000:07d}"


async def a_buyer(
    api: httpx.AsyncClient,
    agent: httpx.AsyncClient,
    *,
    name: str,
    phone: str,
    locale: str,
    tag: str,
    items: list[Any] | None,
    email: str = "",
    consents: tuple[str, ...] = (),
) -> tuple[str, str]:
    """A customer from a lead whose deal was won with items (left open without), tagged, with
    advertising consent on the given channels (recorded on a call, with its evidence); (customer id,
    deal id)."""
    person = {"full_name": name, "phone_number": phone, "source": "radio", "locale": locale}
    lead = await api.post("/api/v1/leads", json={**person, **({"email": email} if email else {})})
    assert lead.status_code == 201, lead.text
    deal = await api.post(f"/api/v1/leads/{lead.json()['id']}/convert", json={"title": "ספה"})
    assert deal.status_code == 201, deal.text
    if items is not None:
        won = await api.post(f"/api/v1/deals/{deal.json()['id']}/close", json={"outcome": "won", "items": items})
        assert won.status_code == 200, won.text

    async def customer() -> dict[str, Any] | None:
        found = (await api.get("/api/v1/customers", params={"lead_id": lead.json()["id"]})).json()["customers"]
        return found[0] if found else None

    found = await eventually(customer, timeout=PATIENCE)
    profile = await agent.get(f"/api/v1/customers/{found['id']}")
    tagged = await agent.patch(
        f"/api/v1/customers/{found['id']}", json={"tags": [tag]}, headers={"If-Match": profile.headers["ETag"]}
    )
    assert tagged.status_code == 200, tagged.text
    for channel in consents:
        body = {
            "channel": channel,
            "purpose": "marketing",
            "granted": True,
            "source": "recorded_call",
            "evidence": "call-77.ogg",
        }
        given = await agent.post(f"/api/v1/customers/{found['id']}/consents", json=body)
        assert given.status_code == 201, given.text
    return str(found["id"]), str(deal.json()["id"])


def signed(body: dict[str, Any], secret: str = SMS_CALLBACK_SECRET, *, age: int = 0) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    stamp = str(int(time.time()) - age)
    headers = {
        "Content-Type": "application/json",
        signatures.TIMESTAMP_HEADER: stamp,
        signatures.SIGNATURE_HEADER: signatures.sign(secret.encode(), stamp, raw),
    }
    return raw, headers


async def sent_to(sms: httpx.AsyncClient, phone: str) -> list[dict[str, Any]]:
    return [m for m in (await sms.get("/messages")).json() if m["to"] == phone]


async def until_finished(marketing: httpx.AsyncClient, promotion_id: str) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        body = (await marketing.get(f"/api/v1/promotions/{promotion_id}")).json()
        return body if body["status"] == "completed" else None

    return await eventually(finished, timeout=PATIENCE)


async def send(marketing: httpx.AsyncClient, body: dict[str, Any]) -> str:
    created = await marketing.post("/api/v1/promotions", json=body)
    assert created.status_code == 201, created.text
    return await schedule(marketing, created.json())


async def schedule(marketing: httpx.AsyncClient, promotion: dict[str, Any]) -> str:
    assert promotion["status"] == "draft"
    scheduled = await marketing.post(
        f"/api/v1/promotions/{promotion['id']}/schedule", json={"row_version": promotion["row_version"]}
    )
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["promotion"]["status"] == "scheduled"
    return str(promotion["id"])


@dataclass
class Scene:
    """The people and clients of the walk-through."""

    stack: Stack
    api: httpx.AsyncClient
    sms: httpx.AsyncClient
    agent: httpx.AsyncClient
    marketing: httpx.AsyncClient
    public: httpx.AsyncClient
    mail: httpx.AsyncClient
    tag: str = field(default_factory=lambda: f"promo-{uuid.uuid4().hex[:10]}")
    maryam_phone: str = field(default_factory=lambda: unique_phone("+98912"))
    dana_phone: str = field(default_factory=lambda: unique_phone("+97250"))
    dana_email: str = field(default_factory=lambda: f"dana.{uuid.uuid4().hex[:8]}@example.com")
    dana: str = ""

    @property
    def audience(self) -> dict[str, Any]:
        """This test's customers who bought a sofa (ספה) in the last year."""
        year_ago = (datetime.now(UTC) - timedelta(days=365)).isoformat()
        return {"tags": [self.tag], "products": ["ספה"], "purchased_after": year_ago}

    @staticmethod
    def texts() -> list[dict[str, str]]:
        return [{"locale": "he-IL", "body": HE_SMS}, {"locale": "fa-IR", "body": FA_SMS}]


async def customers_who_bought(scene: Scene) -> None:
    """Maryam (Persian) and Dana (Hebrew, e-mail too) bought a sofa and consented; Yossi bought one
    without consent; Ron consented but bought a lamp."""
    buy = partial(a_buyer, scene.api, scene.agent, tag=scene.tag)
    await buy(name="مریم کاظمی", phone=scene.maryam_phone, locale="fa-IR", items=SOFA, consents=("sms",))
    scene.dana, _ = await buy(
        name="דנה לוי",
        phone=scene.dana_phone,
        locale="he-IL",
        items=SOFA,
        email=scene.dana_email,
        consents=("sms", "email"),
    )
    await buy(name="יוסי כהן", phone=unique_phone("+97252"), locale="he-IL", items=SOFA)
    await buy(name="רון בר", phone=unique_phone("+97253"), locale="he-IL", items=LAMP, consents=("sms",))


async def the_audience_is_previewed(scene: Scene) -> None:
    async def previewed() -> dict[str, Any] | None:
        # The purchases reach customers with DealClosed, a moment after the deals close.
        body = {"channel": "sms", "audience": scene.audience}
        answer = await scene.marketing.post("/api/v1/audience-previews", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json() if answer.json()["matched"] == 3 else None

    counts = await eventually(previewed, timeout=PATIENCE)
    assert (counts["reachable"], counts["no_consent"]) == (2, 1)
    assert all("•" in m["address"] for m in counts["sample"])  # marketing sees who, not how to reach them

    # Their latest purchase is today's: "last bought before yesterday" (win-back) is nobody yet.
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    criteria = (("last_purchased_after", yesterday, 3), ("last_purchased_before", yesterday, 0))
    # None of them has a ticket open: "only with an open ticket" is nobody, "only without" all three.
    for criterion, value, matched in (*criteria, ("open_tickets", "some", 0), ("open_tickets", "none", 3)):
        body = {"channel": "sms", "audience": {**scene.audience, criterion: value}}
        answer = await scene.marketing.post("/api/v1/audience-previews", json=body)
        assert answer.status_code == 200 and answer.json()["matched"] == matched, (criterion, answer.text)
    backwards = {**scene.audience, "last_purchased_after": yesterday, "last_purchased_before": yesterday}
    refused = await scene.marketing.post("/api/v1/audience-previews", json={"channel": "sms", "audience": backwards})
    assert refused.status_code == 422, refused.text
    assert {e["field"] for e in refused.json()["errors"]} == {"audience.last_purchased_before"}


async def bad_texts_are_refused(scene: Scene) -> None:
    def draft(body: str) -> dict[str, Any]:
        return {"name": "x", "channel": "sms", "audience": scene.audience, "texts": [{"locale": "he-IL", "body": body}]}

    unknown = await scene.marketing.post("/api/v1/promotions", json=draft(HE_SMS + " {coupon}"))
    assert unknown.status_code == 422, unknown.text
    assert "texts[0].body" in {e["field"] for e in unknown.json()["errors"]}
    no_opt_out = await scene.marketing.post(
        "/api/v1/promotions", json=draft("פרסומת: ספות! {advertiser} {advertiser_contact}")
    )
    assert no_opt_out.status_code == 422, no_opt_out.text


async def the_sms_promotion_goes_out_once_each(scene: Scene) -> str:
    body = {
        "name": "כריות לרוכשי ספות",
        "channel": "sms",
        "audience": scene.audience,
        "texts": [{"locale": "he-IL", "body": HE_SMS_LINK}, {"locale": "fa-IR", "body": FA_SMS}],
        "link_url": LANDING,
        "sms_part_price_minor": 8,
        "currency_code": "ILS",
    }
    created = await scene.marketing.post("/api/v1/promotions", json=body)
    assert created.status_code == 201, created.text
    # Before it is scheduled: what it will cost, each one's message rendered (both are sampled).
    answer = await scene.marketing.get(f"/api/v1/promotions/{created.json()['id']}/estimate")
    assert answer.status_code == 200, answer.text
    estimate = answer.json()
    assert {e["locale"]: e["recipients"] for e in estimate["locales"]} == {"he-IL": 1, "fa-IR": 1}
    assert estimate["reachable"] == 2 and estimate["cost_minor"] == estimate["sms_parts"] * 8 > 0
    promotion = await schedule(scene.marketing, created.json())
    done = await until_finished(scene.marketing, promotion)
    assert (done["recipients"], done["processed"]) == (2, 2)
    [to_maryam] = await sent_to(scene.sms, scene.maryam_phone)
    [to_dana] = await sent_to(scene.sms, scene.dana_phone)
    assert "مریم کاظمی عزیز" in to_maryam["body"]
    assert re.search("[۰-۹]{4}/[۰-۹]{2}/[۰-۹]{2}", to_maryam["body"])  # the Jalali date, Persian digits
    assert to_dana["body"].startswith("פרסומת: דנה לוי,") and "הסר" in to_dana["body"]

    # Dana's own short link leads to the sofa page (with UTM parameters); the first follow is a click.
    link = re.search(r"https?://\S+/r/([A-Za-z0-9_-]+)", to_dana["body"])
    assert link is not None, to_dana["body"]
    for _ in range(2):
        followed = await scene.public.get(f"/r/{link.group(1)}")
        assert followed.status_code == 302, followed.text
        assert followed.headers["location"].startswith("https://furniture.example/sofas?")
        assert "utm_source=sms" in followed.headers["location"] and "ref=crm" in followed.headers["location"]
    assert (await scene.public.get("/r/NoSuchCode")).status_code == 404

    # Delivery receipts come back (the fake provider signs them to the gateway).
    async def delivered() -> dict[str, Any] | None:
        report = (await scene.marketing.get(f"/api/v1/promotions/{promotion}/report")).json()
        return report if report["total"]["delivered"] == 2 else None

    report = await eventually(delivered, timeout=PATIENCE)
    assert (report["total"]["sent"], report["total"]["failed"], report["remaining"]) == (2, 0, 0)
    assert report["total"]["cost_minor"] == report["total"]["sms_parts"] * 8 > 0
    assert (report["total"]["sms_parts"], report["total"]["cost_minor"]) == (
        estimate["sms_parts"],
        estimate["cost_minor"],
    )  # as estimated
    assert {v["locale"] for v in report["variants"]} == {"he-IL", "fa-IR"}
    assert report["total"]["clicked"] == 1  # two follows, one click
    return promotion


async def dana_replies_hasser(scene: Scene, promotion: str) -> None:
    """Confirmed once; a provider's retry changes nothing; a forged or stale callback is refused."""
    reply = {
        "id": f"in-{uuid.uuid4().hex}",
        "from": scene.dana_phone,
        "to": "CRM",
        "text": "הסר",
        "time": datetime.now(UTC).isoformat(),
    }
    path = "/api/v1/public/sms-callbacks/replies"
    raw, headers = signed(reply)
    first = await scene.public.post(path, content=raw, headers=headers)
    assert first.status_code == 200 and first.json() == {"applied": True, "action": "opt_out"}, first.text
    assert (await scene.public.post(path, content=raw, headers=headers)).json()["applied"] is False
    forged, forged_headers = signed({**reply, "id": "in-forged"}, secret="not-the-secret")
    assert (await scene.public.post(path, content=forged, headers=forged_headers)).status_code == 401
    stale, stale_headers = signed({**reply, "id": "in-stale"}, age=3600)
    assert (await scene.public.post(path, content=stale, headers=stale_headers)).status_code == 401

    async def confirmed() -> list[dict[str, Any]] | None:
        found = await sent_to(scene.sms, scene.dana_phone)
        return found if len(found) == 2 else None

    assert "הוסרת" in (await eventually(confirmed, timeout=PATIENCE))[1]["body"]

    # Customers records the withdrawal, from the reply, with the text as evidence.
    async def withdrawn() -> list[dict[str, Any]] | None:
        records = (await scene.agent.get(f"/api/v1/customers/{scene.dana}/consents")).json()["records"]
        found = [r for r in records if r["channel"] == "sms" and r["purpose"] == "marketing" and not r["granted"]]
        return found or None

    [withdrawal] = await eventually(withdrawn, timeout=PATIENCE)
    assert withdrawal["source"] == "reply" and withdrawal["evidence"] == "הסר"

    async def opted_out() -> int | None:
        total = (await scene.marketing.get(f"/api/v1/promotions/{promotion}/report")).json()["total"]
        return total["opted_out"] or None

    assert await eventually(opted_out, timeout=PATIENCE) == 1


async def the_next_promotion_skips_her(scene: Scene) -> None:
    body = {"name": "שבוע הבא", "channel": "sms", "audience": scene.audience, "texts": scene.texts()}
    second = await send(scene.marketing, body)
    assert (await until_finished(scene.marketing, second))["processed"] == 1
    assert len(await sent_to(scene.sms, scene.maryam_phone)) == 2
    assert len(await sent_to(scene.sms, scene.dana_phone)) == 2  # the first promotion and the confirmation


async def the_hebrew_e_mail_unsubscribes_in_one_click(scene: Scene) -> None:
    body = {
        "name": "כריות במייל",
        "channel": "email",
        "audience": scene.audience,
        "texts": [{"locale": "he-IL", "subject": HE_EMAIL_SUBJECT, "body": HE_EMAIL}],
        "track_opens": True,
    }
    promotion = await send(scene.marketing, body)
    assert (await until_finished(scene.marketing, promotion))["processed"] == 1

    async def mails() -> list[dict[str, Any]] | None:
        found = [m for m in (await scene.mail.get("/messages")).json() if m["rcpt_to"] == [scene.dana_email]]
        return found or None

    [received] = await eventually(mails, timeout=PATIENCE)
    assert received["subject"] == HE_EMAIL_SUBJECT and '<html lang="he" dir="rtl">' in received["html"]
    assert received["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The promotion chose to track opens: her mail app fetching the image counts one open, once.
    image = re.search(r'<img src="([^"]+/o/[A-Za-z0-9_-]+)" width="1" height="1"', received["html"])
    assert image is not None and image.group(1).startswith(scene.stack.gateway_url), received["html"]
    for _ in range(2):
        fetched = await scene.public.get(image.group(1).replace(scene.stack.gateway_url, ""))
        assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/gif", fetched.text
        assert fetched.content.startswith(b"GIF89a") and "no-store" in fetched.headers["cache-control"]
    assert (await scene.public.get("/o/NoSuchCode")).status_code == 404
    report = (await scene.marketing.get(f"/api/v1/promotions/{promotion}/report")).json()
    assert (report["promotion"]["track_opens"], report["total"]["opened"]) == (True, 1)
    one_click = re.fullmatch(r"<(.+)>", received["headers"]["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
    assert one_click.startswith(f"{scene.stack.gateway_url}/api/v1/public/unsubscribe/")
    path = one_click.replace(scene.stack.gateway_url, "")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    unsubscribed = await scene.public.post(path, content=b"List-Unsubscribe=One-Click", headers=form)
    assert unsubscribed.status_code == 204, unsubscribed.text
    assert (await scene.public.post(path[:-4] + "0000")).status_code == 404  # a changed token names no one

    async def email_withdrawn() -> bool | None:
        records = (await scene.agent.get(f"/api/v1/customers/{scene.dana}/consents")).json()["records"]
        found = any(r["channel"] == "email" and r["purpose"] == "marketing" and not r["granted"] for r in records)
        return found or None

    assert await eventually(email_withdrawn, timeout=PATIENCE)


async def a_promotion_that_pays(scene: Scene) -> None:
    """Noa, considering a sofa (her deal open), gets a promotion and then buys: the report
    attributes the sale to it and shows the revenue per shekel its SMS cost."""
    tag = f"{scene.tag}-pays"
    _, deal = await a_buyer(
        scene.api,
        scene.agent,
        name="נועה ברק",
        phone=unique_phone("+97254"),
        locale="he-IL",
        tag=tag,
        items=None,
        consents=("sms",),
    )
    body = {
        "name": "ספה בהנחה",
        "channel": "sms",
        "audience": {"tags": [tag]},
        "texts": [{"locale": "he-IL", "body": HE_SMS}],
        "sms_part_price_minor": 8,
        "currency_code": "ILS",
    }
    promotion = await send(scene.marketing, body)
    await until_finished(scene.marketing, promotion)
    won = await scene.api.post(f"/api/v1/deals/{deal}/close", json={"outcome": "won", "items": SOFA})
    assert won.status_code == 200, won.text

    async def paid() -> dict[str, Any] | None:
        report = (await scene.marketing.get(f"/api/v1/promotions/{promotion}/report")).json()
        return report if report["results"] and report["results"]["deals_won"] == 1 else None

    report = await eventually(paid, timeout=PATIENCE)
    results = report["results"]
    assert (results["recipients"], results["buyers"], results["window_days"]) == (1, 1, 30)
    assert results["revenue"] == [{"amount_minor": 459900, "currency_code": "ILS"}]
    cost = report["total"]["cost_minor"]
    assert cost > 0 and results["revenue_per_cost"] == round(459900 / cost, 2)
    assert results["cost_per_buyer"] == {"amount_minor": cost, "currency_code": "ILS"}  # one buyer


async def nobody_and_the_past_cannot_be_scheduled(scene: Scene) -> None:
    nobody = {**scene.audience, "tags": [f"{scene.tag}-nobody"]}
    body = {"name": "nobody", "channel": "sms", "audience": nobody, "texts": scene.texts()}
    draft = await scene.marketing.post("/api/v1/promotions", json=body)
    assert draft.status_code == 201, draft.text
    path = f"/api/v1/promotions/{draft.json()['id']}/schedule"
    empty = await scene.marketing.post(path, json={})
    assert empty.status_code == 409 and empty.json()["errors"][0]["field"] == "audience", empty.text
    past = await scene.marketing.post(path, json={"send_time": (datetime.now(UTC) - timedelta(hours=1)).isoformat()})
    assert past.status_code == 422 and {e["field"] for e in past.json()["errors"]} == {"send_time"}, past.text


async def test_a_sofa_promotion_by_sms_and_e_mail_with_receipts_a_refusal_and_its_report(
    api: httpx.AsyncClient, sms: httpx.AsyncClient, stack: Stack
) -> None:
    url = stack.gateway_url
    agent = httpx.AsyncClient(base_url=url, timeout=15, headers=stack.auth_headers("service_agent"))
    marketing = httpx.AsyncClient(base_url=url, timeout=30, headers=stack.auth_headers("marketing"))
    public = httpx.AsyncClient(base_url=url, timeout=15)
    mail = httpx.AsyncClient(base_url=stack.mail_url, timeout=15)
    async with agent, marketing, public, mail:
        scene = Scene(stack, api, sms, agent, marketing, public, mail)
        await customers_who_bought(scene)
        await the_audience_is_previewed(scene)
        await bad_texts_are_refused(scene)
        promotion = await the_sms_promotion_goes_out_once_each(scene)
        await dana_replies_hasser(scene, promotion)
        await the_next_promotion_skips_her(scene)
        await the_hebrew_e_mail_unsubscribes_in_one_click(scene)
        await a_promotion_that_pays(scene)
        await nobody_and_the_past_cannot_be_scheduled(scene)


def as_typed(e164: str) -> str:
    """A number as a person types it at home: +972501234567 → 050-1234567, +989121234567 → 0912 123 4567."""
    if e164.startswith("+98"):
        national = "0" + e164[3:]
        return f"{national[:4]} {national[4:7]} {national[7:]}"
    national = "0" + e164[4:]
    return f"{national[:3]}-{national[3:]}"


async def test_a_promotion_to_an_uploaded_list_reaches_its_members_once(
    api: httpx.AsyncClient, sms: httpx.AsyncClient, stack: Stack
) -> None:
    """Marketing uploads an exhibition's visitors as a CSV (numbers as typed, one bad, one nobody's),
    reads the line errors, previews the list as an audience and sends to it: each member once, and
    a consenting customer not on the list nothing."""
    url = stack.gateway_url
    agent = httpx.AsyncClient(base_url=url, timeout=15, headers=stack.auth_headers("service_agent"))
    marketing = httpx.AsyncClient(base_url=url, timeout=30, headers=stack.auth_headers("marketing"))
    async with agent, marketing:
        tag = f"list-{uuid.uuid4().hex[:10]}"
        maryam, dana, other = unique_phone("+98912"), unique_phone("+97250"), unique_phone("+97252")
        buy = partial(a_buyer, api, agent, tag=tag, items=None, consents=("sms",))
        await buy(name="مریم کاظمی", phone=maryam, locale="fa-IR")
        await buy(name="דנה לוי", phone=dana, locale="he-IL")
        await buy(name="רון בר", phone=other, locale="he-IL")
        visitors = f"שם,phone_number\nמרים,{as_typed(maryam)}\nדנה,{as_typed(dana)}\nשגוי,12\nזר,050-0000003\n"
        csv = {"Content-Type": "text/csv"}
        uploaded = await marketing.post(
            "/api/v1/audience-lists", params={"name": f"תערוכה {tag}"}, content=visitors.encode(), headers=csv
        )
        assert uploaded.status_code == 201, uploaded.text
        listed = uploaded.json()
        assert (listed["members"], listed["lines"], listed["error_count"]) == (2, 4, 2)
        assert [(e["line_number"], e["field"]) for e in listed["errors"]] == [(4, "phone_number"), (5, "phone_number")]
        wrong = await marketing.post(
            "/api/v1/audience-lists", params={"name": "x"}, content=visitors.encode("cp1255"), headers=csv
        )
        assert wrong.status_code == 422 and {e["field"] for e in wrong.json()["errors"]} == {"content"}, wrong.text

        audience = {"list_id": listed["id"]}
        preview = await marketing.post("/api/v1/audience-previews", json={"channel": "sms", "audience": audience})
        assert (preview.json()["matched"], preview.json()["reachable"]) == (2, 2), preview.text
        # Two variants split the list evenly (no test share): each visitor gets one of them.
        texts = [*Scene.texts(), {"locale": "he-IL", "body": HE_SMS_B, "variant": "B"}]
        body = {"name": f"מבקרי התערוכה {tag}", "channel": "sms", "audience": audience, "texts": texts}
        promotion = await send(marketing, body)
        done = await until_finished(marketing, promotion)
        assert (done["recipients"], done["processed"]) == (2, 2)
        assert done["audience"]["list_id"] == listed["id"]
        assert [len(await sent_to(sms, phone)) for phone in (maryam, dana, other)] == [1, 1, 0]
        report = (await marketing.get(f"/api/v1/promotions/{promotion}/report")).json()
        assert sum(row["sent"] for row in report["split"]) == 2 and {r["variant"] for r in report["split"]} <= {
            "A",
            "B",
        }
        refused = await marketing.post("/api/v1/promotions", json={**body, "test_percent": 20})
        assert refused.status_code == 422 and {e["field"] for e in refused.json()["errors"]} == {"winner_rule"}
