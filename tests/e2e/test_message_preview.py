"""A promotion drafted through the gateway: marketing previews a Persian SMS (Solar Hijri date,
Persian digits, its cost in SMS parts) and an Israeli advertising SMS against §30A, through the
real notifications service; a request it cannot preview is a problem+json naming the fields, and
nothing is ever sent."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from crm_devstack.stack import Stack
from crm_kit.calendars import format_day

pytestmark = pytest.mark.e2e


async def test_marketing_previews_a_persian_and_a_hebrew_advertising_sms(stack: Stack, sms: httpx.AsyncClient) -> None:
    marketing = stack.auth_headers("marketing")
    sent_before = len((await sms.get("/messages")).json())
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=marketing, timeout=30) as api:
        persian = await api.post(
            "/api/v1/message-previews",
            json={
                "channel": "sms",
                "advertising": True,
                "locale": "fa-IR",
                "body": "{name} عزیز، تخفیف تا {date:long}",
            },
        )
        assert persian.status_code == 200, persian.text
        shown = persian.json()
        today = datetime.now(ZoneInfo("Asia/Jerusalem")).date()
        assert shown["body"] == f"علی رضایی عزیز، تخفیف تا {format_day(today, 'fa-IR', 'long')}"
        assert any("\u06f0" <= c <= "\u06f9" for c in shown["body"])  # Persian digits
        assert (shown["encoding"], shown["sms_parts"], shown["rules_country"]) == ("ucs-2", 1, "IL")
        assert sorted(v["rule"] for v in shown["violations"]) == [
            "advertiser_identity",
            "advertising_marker",
            "opt_out",
        ]

        hebrew = await api.post(
            "/api/v1/message-previews",
            json={
                "channel": "sms",
                "advertising": True,
                "body": "פרסומת: ספות ב-20% עד {date}. {advertiser} {advertiser_contact}. להסרה השיבו הסר",
            },
        )
        assert hebrew.status_code == 200 and hebrew.json()["violations"] == [], hebrew.text

        bad = await api.post("/api/v1/message-previews", json={"channel": "fax", "body": ""})
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        assert {e["field"] for e in bad.json()["errors"]} >= {"channel", "body"}
        subjectless = await api.post("/api/v1/message-previews", json={"channel": "email", "body": "שלום"})
        assert subjectless.status_code == 422, subjectless.text
        assert {e["field"] for e in subjectless.json()["errors"]} == {"subject"}
    assert len((await sms.get("/messages")).json()) == sent_before
