"""Demo data loaded by ``make run``: Hebrew and Persian leads from every kind of source."""

# Hebrew letters look like Latin ones to ruff's confusables check; here they are meant.

from __future__ import annotations

from typing import Any


def _lead(
    number: int, full_name: str, phone: str, email: str, source: str, campaign: str, locale: str
) -> dict[str, str]:
    return {
        "full_name": full_name,
        "phone_number": phone,
        "email": email,
        "source": source,
        "campaign": campaign,
        "locale": locale,
        "request_id": f"demo-lead-{number:02d}",
    }


DEMO_LEADS: tuple[dict[str, str], ...] = (
    _lead(1, "דנה לוי", "050-1234567", "dana.levi@example.co.il", "radio", "radio-spring", "he-IL"),
    _lead(2, "יוסי כהן", "052-7654321", "yossi.cohen@example.co.il", "tv", "tv-prime-time", "he-IL"),
    _lead(3, "مریم احمدی", "0912 345 6789", "maryam.ahmadi@example.ir", "website", "site-organic", "fa-IR"),
    _lead(4, "علی رضایی", "0935 123 4567", "ali.rezaei@example.ir", "web_form", "nowruz-sale", "fa-IR"),
    _lead(
        5,
        "נועה מזרחי",
        "054-2223344",
        "noa.mizrahi@example.co.il",
        "referral",
        "friend-brings-friend",
        "he-IL",
    ),
    _lead(6, "אבי פרץ", "053-9876543", "avi.peretz@example.co.il", "exhibition", "furniture-expo", "he-IL"),
    _lead(7, "زهرا محمدی", "0901 234 5678", "zahra.mohammadi@example.ir", "press", "press-hamshahri", "fa-IR"),
    _lead(8, "רונית ביטון", "058-4445566", "ronit.biton@example.co.il", "telemarketing", "outbound-q1", "he-IL"),
    _lead(9, "حسین کریمی", "0919 876 5432", "hossein.karimi@example.ir", "email", "newsletter-march", "fa-IR"),
    _lead(10, "מיכל אברהם", "050-7778899", "michal.avraham@example.co.il", "import", "legacy-import", "he-IL"),
    _lead(11, "فاطمه حسینی", "0921 555 1234", "fatemeh.hosseini@example.ir", "radio", "radio-spring", "fa-IR"),
    _lead(12, "עומר שפירא", "052-1112233", "omer.shapira@example.co.il", "website", "site-organic", "he-IL"),
)
DEMO_CONVERSIONS: tuple[tuple[int, str], ...] = (
    (0, "ספה לסלון — דנה לוי"),
    (2, "مبلمان پذیرایی — مریم احمدی"),
)
"""(index into DEMO_LEADS, deal title) of the leads converted to deals; the first deal is won."""
DEMO_WON_DEAL: dict[str, Any] = {
    "outcome": "won",
    "items": [
        {
            "sku": "SOFA-3",
            "description": "ספה תלת-מושבית",
            "quantity": 1,
            "unit_price": {"amount_minor": 459900, "currency_code": "ILS"},
        }
    ],
}
