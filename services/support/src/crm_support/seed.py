"""What a new support database starts with: the shipped Israeli and Iranian calendars, three
queues, a category tree and the first SLA policy. All of it is data an administrator edits
afterwards (queues' members and strategy, the policy as a new version, calendars' hours and
holidays); queues start without members — people are added by the administrator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_support.sla.calendar import calendar_to_dict, shipped_calendar

SHIPPED_CALENDARS = ("IL", "IR")


def shipped_calendars() -> dict[str, dict[str, Any]]:
    return {code: calendar_to_dict(shipped_calendar(code)) for code in SHIPPED_CALENDARS}


def _names(he: str, fa: str, en: str) -> dict[str, str]:
    return {"he": he, "fa": fa, "en": en}


QUEUES: tuple[Mapping[str, Any], ...] = (
    {
        "id": "general",
        "names": _names("שירות לקוחות", "خدمات مشتریان", "Customer service"),
        "strategy": "round_robin",
        "calendar_code": "IL",
    },
    {
        "id": "complaints",
        "names": _names("תלונות", "شکایات", "Complaints"),
        "strategy": "least_loaded",
        "calendar_code": "IL",
    },
    {
        "id": "billing",
        "names": _names("חשבונות", "صورت‌حساب", "Billing"),
        "strategy": "round_robin",
        "calendar_code": "IL",
    },
)

CATEGORIES: tuple[Mapping[str, Any], ...] = (
    {"id": "product", "parent_id": None, "names": _names("מוצר", "محصول", "Product"), "queue_id": "general"},
    {
        "id": "product.delivery",
        "parent_id": "product",
        "names": _names("משלוח", "ارسال", "Delivery"),
        "queue_id": "complaints",
        "position": 1,
    },
    {
        "id": "product.damage",
        "parent_id": "product",
        "names": _names("נזק או פגם", "آسیب یا نقص", "Damage or defect"),
        "queue_id": "complaints",
        "position": 2,
    },
    {
        "id": "product.warranty",
        "parent_id": "product",
        "names": _names("אחריות ותיקון", "گارانتی و تعمیر", "Warranty and repair"),
        "queue_id": "general",
        "position": 3,
    },
    {"id": "billing", "parent_id": None, "names": _names("חיוב", "صورت‌حساب", "Billing"), "queue_id": "billing"},
    {
        "id": "billing.refund",
        "parent_id": "billing",
        "names": _names("החזר כספי", "بازپرداخت", "Refund"),
        "queue_id": "billing",
        "position": 1,
    },
    {
        "id": "general",
        "parent_id": None,
        "names": _names("שאלה כללית", "پرسش عمومی", "General question"),
        "queue_id": "general",
        "position": 9,
    },
)

# Business minutes per priority: first response, next response, resolution.
_MINUTES = {
    "urgent": (30, 30, 4 * 60),
    "high": (60, 60, 9 * 60),
    "normal": (4 * 60, 4 * 60, 3 * 9 * 60),
    "low": (9 * 60, 9 * 60, 5 * 9 * 60),
}


def _targets() -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    for priority, minutes in _MINUTES.items():
        for metric, value in zip(("first_response", "next_response", "resolution"), minutes, strict=True):
            targets.append(
                {
                    "metric": metric,
                    "priority": priority,
                    "category_id": "",
                    "customer_tier": "",
                    "target_minutes": value,
                }
            )
    # A complaint about a delivery from a VIP customer is answered within the hour whatever its priority.
    targets.append(
        {
            "metric": "first_response",
            "priority": "normal",
            "category_id": "product.delivery",
            "customer_tier": "vip",
            "target_minutes": 60,
        }
    )
    return targets


SLA_POLICY_V1: Mapping[str, Any] = {
    "version": 1,
    "targets": _targets(),
    "warn_before_minutes": 30,
    "escalate_after_minutes": 4 * 60,
    "reassign_on_breach": True,
    "created_by": "seed",
}
