"""The quote document's fixed words in Hebrew, Persian and English, and the names of units.

Plain data, no I/O. Hebrew abbreviations use the gershayim (U+05F4, as in מע״מ) rather than an
ASCII quote: it is the letter's own punctuation and keeps the HTML free of quote escaping.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class DocLabels:
    """Every fixed text of one language; `page` and `page_of` frame the CSS page counters."""

    title: str
    number: str
    version: str
    issue_date: str
    valid_until: str
    seller: str
    bill_to: str
    tax_id: str
    phone: str
    email: str
    line_no: str
    sku: str
    description: str
    quantity: str
    unit: str
    unit_price: str
    discount: str
    net: str
    vat: str
    subtotal: str
    total_discount: str
    vat_total: str
    total: str
    amounts_in: str
    notes: str
    page: str
    page_of: str


LABELS = MappingProxyType(
    {
        "en": DocLabels(
            title="Quote",
            number="Quote no.",
            version="Version",
            issue_date="Date",
            valid_until="Valid until",
            seller="From",
            bill_to="Bill to",
            tax_id="Tax ID",
            phone="Phone",
            email="Email",
            line_no="#",
            sku="SKU",
            description="Description",
            quantity="Qty",
            unit="Unit",
            unit_price="Unit price",
            discount="Discount",
            net="Amount",
            vat="VAT",
            subtotal="Subtotal",
            total_discount="Discount",
            vat_total="VAT",
            total="Total",
            amounts_in="Amounts in",
            notes="Notes",
            page="Page",
            page_of="of",
        ),
        "he": DocLabels(
            title="הצעת מחיר",
            number="מספר הצעה",
            version="גרסה",
            issue_date="תאריך",
            valid_until="בתוקף עד",
            seller="מאת",
            bill_to="לכבוד",
            tax_id="ח״פ / ע״מ",
            phone="טלפון",
            email="דוא״ל",
            line_no="#",
            sku="מק״ט",
            description="תיאור",
            quantity="כמות",
            unit="יחידה",
            unit_price="מחיר ליחידה",
            discount="הנחה",
            net="סכום",
            vat="מע״מ",
            subtotal="סכום ביניים",
            total_discount="הנחה",
            vat_total="מע״מ",
            total="סה״כ לתשלום",
            amounts_in="הסכומים ב",
            notes="הערות",
            page="עמוד",
            page_of="מתוך",
        ),
        "fa": DocLabels(
            title="پیش‌فاکتور",
            number="شماره",
            version="نسخه",
            issue_date="تاریخ",
            valid_until="معتبر تا",
            seller="فروشنده",
            bill_to="خریدار",
            tax_id="شناسه ملی / کد اقتصادی",
            phone="تلفن",
            email="ایمیل",
            line_no="ردیف",
            sku="کد کالا",
            description="شرح",
            quantity="تعداد",
            unit="واحد",
            unit_price="مبلغ واحد",
            discount="تخفیف",
            net="مبلغ پس از تخفیف",
            vat="ارزش افزوده",
            subtotal="جمع",
            total_discount="تخفیف",
            vat_total="مالیات بر ارزش افزوده",
            total="مبلغ قابل پرداخت",
            amounts_in="مبالغ به",
            notes="توضیحات",
            page="صفحه",
            page_of="از",
        ),
    }
)

# The catalog's units (a product's `unit`); one not listed here is printed as the catalog has it.
UNIT_NAMES = MappingProxyType(
    {
        "en": {
            "unit": "unit",
            "hour": "hour",
            "day": "day",
            "month": "month",
            "kg": "kg",
            "m": "m",
            "licence": "licence",
        },
        "he": {
            "unit": "יח׳",
            "hour": "שעה",
            "day": "יום",
            "month": "חודש",
            "kg": "ק״ג",
            "m": "מ׳",
            "licence": "רישיון",
        },
        "fa": {
            "unit": "عدد",
            "hour": "ساعت",
            "day": "روز",
            "month": "ماه",
            "kg": "کیلوگرم",
            "m": "متر",
            "licence": "مجوز",
        },
    }
)
