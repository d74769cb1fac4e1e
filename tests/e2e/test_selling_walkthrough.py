"""The sales manager's day from issue 15's "done when", through the API alone, as the README's
walk-through tells it: a pipeline for a product line, products and a price list, a lead's deal
opened in that pipeline and moved stage by stage, a Hebrew quote sent as a PDF and accepted, the
order created, shipped and the SMS sent, and the team's target read against what was sold — with
the board and the forecast showing the deal on the way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from crm_devstack.stack import Stack
from crm_kit.testing import eventually

from .test_golden_path import capture, sms_for, the_order
from .test_quotes import pdf_text

pytestmark = pytest.mark.e2e

STAGES = [
    {"name": "פנייה ראשונה", "probability": 10},
    {"name": "הצעת מחיר", "probability": 60, "required_fields": ["amount", "expected_close_date"]},
    {"name": "משא ומתן", "probability": 80},
    {"name": "נסגר", "probability": 100, "outcome": "won"},
    {"name": "אבד", "probability": 0, "outcome": "lost"},
]


async def a_team_of_their_own(admin: httpx.AsyncClient) -> tuple[str, str, str]:
    """The manager's team with one rep, so no other test's deals count for its target."""
    suffix = uuid.uuid4().hex[:8]
    team = await admin.post(
        "/api/v1/teams",
        json={"id": f"team-office-{suffix}", "name": f"ריהוט משרדי {suffix}", "manager_id": f"manager-{suffix}"},
    )
    assert team.status_code == 201, team.text
    rep = await admin.post(
        "/api/v1/reps", json={"id": f"rep-office-{suffix}", "name": "אורי", "team_id": team.json()["id"]}
    )
    assert rep.status_code == 201, rep.text
    return team.json()["id"], rep.json()["id"], f"manager-{suffix}"


async def catalog(manager: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    desk = await manager.post(
        "/api/v1/products",
        json={
            "sku": f"DESK-{uuid.uuid4().hex[:8]}",
            "names": {"he": "שולחן עבודה 160", "en": "Desk 160", "fa": "میز کار ۱۶۰"},
            "unit": "unit",
            "tax_class": "standard",
            "product_line": "office",
        },
    )
    assert desk.status_code == 201, desk.text
    price_list = await manager.post(
        "/api/v1/price-lists",
        json={
            "name": f"מחירון משרדים {uuid.uuid4().hex[:6]}",
            "currency_code": "ILS",
            "country_code": "IL",
            "valid_from": (datetime.now(UTC).date() - timedelta(days=1)).isoformat(),
            "items": [{"product_id": desk.json()["id"], "unit_price": {"amount_minor": 189_000}}],
        },
    )
    assert price_list.status_code == 201, price_list.text
    return desk.json(), price_list.json()


async def board_and_forecast_show(manager: httpx.AsyncClient, pipeline_id: str, stage_id: str, deal_id: str) -> None:
    """The manager's board and forecast show the deal in the quote stage, weighted at 60 %."""
    board = await manager.get(f"/api/v1/pipelines/{pipeline_id}/board")
    assert board.status_code == 200, board.text
    quote_stage = next(s for s in board.json()["stages"] if s["stage"]["id"] == stage_id)
    assert [d["id"] for d in quote_stage["deals"]] == [deal_id]
    assert quote_stage["amounts"] == [
        {"currency_code": "ILS", "deal_count": 1, "amount_minor": 378_000, "weighted_amount_minor": 226_800}
    ]
    forecast = await manager.get(
        "/api/v1/reports/forecast", params={"group_by": "pipeline", "pipeline_id": pipeline_id}
    )
    assert forecast.status_code == 200, forecast.text
    [row] = forecast.json()["rows"]
    assert (row["open_deals"], row["weighted_amount_minor"]) == (1, 226_800)


async def send_and_accept_a_quote(
    rep: httpx.AsyncClient, deal_path: str, desk: dict[str, Any], price_list: dict[str, Any]
) -> None:
    """The rep's quote: two desks at 10 % off, sent, printed in Hebrew, accepted."""
    quote = await rep.post(
        f"{deal_path}/quotes",
        json={
            "price_list_id": price_list["id"],
            "lines": [{"product_id": desk["id"], "quantity": 2, "discount_bp": 1000}],
            "bill_to": {"tax_id": "515123456"},
        },
    )
    assert quote.status_code == 201, quote.text
    quote_path = f"/api/v1/quotes/{quote.json()['id']}"
    assert (await rep.post(f"{quote_path}/send")).json()["status"] == "sent"
    pdf = await rep.get(f"{quote_path}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    text = pdf_text(pdf.content)
    # 2 × 1,890.00 less 10 % = 3,402.00, plus 18 % VAT.
    assert "הצעת מחיר" in text and "שולחן עבודה" in text and "₪ 4,014.36" in text
    accepted = await rep.post(f"{quote_path}/accept")
    assert accepted.status_code == 200, accepted.text


async def test_a_sales_manager_runs_a_deal_from_pipeline_to_sms_and_reads_the_team_target(
    api: httpx.AsyncClient, sms: httpx.AsyncClient, stack: Stack
) -> None:
    team_id, rep_id, manager_id = await a_team_of_their_own(api)
    today = datetime.now(ZoneInfo("Asia/Jerusalem")).date()

    def client(role: str, subject: str) -> httpx.AsyncClient:
        headers = stack.auth_headers(role, subject=subject, team_id=team_id)
        return httpx.AsyncClient(base_url=stack.gateway_url, timeout=20, headers=headers)

    async with client("sales_manager", manager_id) as manager, client("sales_rep", rep_id) as rep:
        # The manager: a pipeline for the office line, its products and price list, a team target.
        pipeline = await manager.post(
            "/api/v1/pipelines",
            json={"name": f"ריהוט משרדי {uuid.uuid4().hex[:6]}", "product_line": "office", "stages": STAGES},
        )
        assert pipeline.status_code == 201, pipeline.text
        stages = [s["id"] for s in pipeline.json()["stages"]]
        desk, price_list = await catalog(manager)
        target = await manager.post(
            "/api/v1/targets",
            json={
                "subject_kind": "team",
                "subject_id": team_id,
                "period_kind": "month",
                "period_start": today.isoformat(),
                "metric": "won_amount",
                "amount": {"amount_minor": 1_000_000, "currency_code": "ILS"},
            },
        )
        assert target.status_code == 201, target.text

        # A lead comes in and is the rep's; the rep opens its deal in the office pipeline.
        lead = await capture(api)
        assert (await api.post(f"/api/v1/leads/{lead['id']}/assign", json={"rep_id": rep_id})).status_code == 200
        converted = await rep.post(
            f"/api/v1/leads/{lead['id']}/convert", json={"title": "משרד חדש", "pipeline_id": pipeline.json()["id"]}
        )
        assert converted.status_code == 201, converted.text
        deal = converted.json()
        assert (deal["pipeline_id"], deal["stage_id"], deal["owner_team_id"]) == (
            pipeline.json()["id"],
            stages[0],
            team_id,
        )

        # Stage by stage: the quote stage needs an amount and a close date first.
        deal_path = f"/api/v1/deals/{deal['id']}"
        refused = await rep.post(f"{deal_path}/stage", json={"stage_id": stages[1]})
        assert refused.status_code == 409, refused.text
        filled = await rep.patch(
            deal_path,
            json={
                "amount": {"amount_minor": 378_000, "currency_code": "ILS"},
                "expected_close_date": (today + timedelta(days=20)).isoformat(),
            },
            headers={"If-Match": deal["etag"]},
        )
        assert filled.status_code == 200, filled.text
        moved = await rep.post(
            f"{deal_path}/stage", json={"stage_id": stages[1]}, headers={"If-Match": filled.headers["etag"]}
        )
        assert moved.status_code == 200, moved.text

        await board_and_forecast_show(manager, pipeline.json()["id"], stages[1], deal["id"])
        await send_and_accept_a_quote(rep, deal_path, desk, price_list)

        # 2 × 1,890.00 less 10 % = 3,402.00 net: the won deal's total, the order's lines.
        won = (await rep.get(deal_path)).json()
        assert (won["status"], won["stage_id"]) == ("won", stages[3])
        assert won["total"] == {"amount_minor": 340_200, "currency_code": "ILS"}

    order = await the_order(api, deal["id"])
    assert [line["sku"] for line in order["lines"]] == [desk["sku"]]
    eta = (today + timedelta(days=5)).isoformat()
    shipped = await api.post(
        f"/api/v1/orders/{order['id']}/ship",
        json={"carrier": "דואר ישראל", "tracking_number": "RR123123123IL", "estimated_delivery_date": eta},
    )
    assert shipped.status_code == 200, shipped.text
    assert len(await eventually(lambda: sms_for(sms, lead["phone_number"]), timeout=30)) == 1

    # The team's target against what was sold, as the manager reads it.
    async with client("sales_manager", manager_id) as manager:

        async def team_row() -> dict[str, Any] | None:
            report = (await manager.get("/api/v1/reports/targets", params={"period_kind": "month"})).json()
            rows = [r for r in report["rows"] if r["target"]["subject_id"] == team_id]
            return rows[0] if rows and rows[0]["actual_amount"] else None

        row = await eventually(team_row, timeout=30)
    assert row["actual_amount"] == {"amount_minor": 340_200, "currency_code": "ILS"}
    assert row["achieved_percent"] == pytest.approx(34.02)
