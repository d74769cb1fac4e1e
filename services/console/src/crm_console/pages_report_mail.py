"""A saved report by e-mail, its words and form (the routes are pages_reports'): the caller's
schedules of it on the saved report's page (when, to whom, the last delivery or why it was not
made), with "send now" and "delete", and the form that adds one (weekly on a weekday or monthly on
a day, at a local hour, to the company's addresses)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from crm_console.i18n import Translator, words
from crm_console.session import Session
from crm_console.web import api

WEEKDAYS = range(7)
FIELDS = ("cadence", "weekday", "day_of_month", "hour", "recipients", "locale")

words(
    {
        "rs_title": {"he": "שליחה בדוא״ל", "fa": "ارسال با ایمیل", "en": "By e-mail"},
        "rs_none": {
            "he": "הדוח עוד לא נשלח בדוא״ל.",
            "fa": "این گزارش هنوز با ایمیل فرستاده نمی‌شود.",
            "en": "This report is not e-mailed yet.",
        },
        "rs_weekly": {"he": "כל שבוע", "fa": "هر هفته", "en": "Every week"},
        "rs_monthly": {"he": "כל חודש", "fa": "هر ماه", "en": "Every month"},
        "rs_cadence": {"he": "תדירות", "fa": "تناوب", "en": "How often"},
        "rs_weekday": {"he": "יום בשבוע", "fa": "روز هفته", "en": "Day of the week"},
        "rs_day_of_month": {"he": "יום בחודש", "fa": "روز ماه", "en": "Day of the month"},
        "rs_hour": {"he": "שעה", "fa": "ساعت", "en": "Hour"},
        "rs_recipients": {
            "he": "נמענים (כתובות החברה, מופרדות בפסיק)",
            "fa": "گیرندگان (نشانی‌های شرکت، جدا با ویرگول)",
            "en": "Recipients (company addresses, comma-separated)",
        },
        "rs_language": {"he": "שפת הדוח", "fa": "زبان گزارش", "en": "Report language"},
        "rs_add": {"he": "הוספת שליחה", "fa": "افزودن ارسال", "en": "Add a schedule"},
        "rs_next": {"he": "הבא", "fa": "بعدی", "en": "Next"},
        "rs_last": {"he": "נשלח לאחרונה", "fa": "آخرین ارسال", "en": "Last sent"},
        "rs_not_sent": {"he": "לא נשלח", "fa": "فرستاده نشد", "en": "Not sent"},
        "rs_send_now": {"he": "שליחה עכשיו", "fa": "هم‌اکنون بفرست", "en": "Send now"},
        "rs_sent_now": {
            "he": "הדוח יישלח בעוד רגעים.",
            "fa": "گزارش تا چند لحظه دیگر فرستاده می‌شود.",
            "en": "The report goes out in a moment.",
        },
        "rs_pdf": {
            "he": "PDF עם תרשים, בטווח שנשמר עם הדוח, לפי ההרשאות שלך.",
            "fa": "PDF با نمودار، در بازهٔ ذخیره‌شده با گزارش، با دسترسی شما.",
            "en": "A PDF with its chart, over the report's saved range, with what you may see.",
        },
        "weekday_0": {"he": "שני", "fa": "دوشنبه", "en": "Monday"},
        "weekday_1": {"he": "שלישי", "fa": "سه‌شنبه", "en": "Tuesday"},
        "weekday_2": {"he": "רביעי", "fa": "چهارشنبه", "en": "Wednesday"},
        "weekday_3": {"he": "חמישי", "fa": "پنجشنبه", "en": "Thursday"},
        "weekday_4": {"he": "שישי", "fa": "جمعه", "en": "Friday"},
        "weekday_5": {"he": "שבת", "fa": "شنبه", "en": "Saturday"},
        "weekday_6": {"he": "ראשון", "fa": "یکشنبه", "en": "Sunday"},
    }
)


async def schedules_of(request: Request, session: Session, report_id: str) -> list[dict[str, Any]]:
    reply = await api(request).call("listReportSchedules", session.token, query={"saved_report_id": report_id})
    return list(reply.body["schedules"])


def schedule_form(form: Any, t: Translator) -> dict[str, Any]:
    """The posted form as the gateway's body: numbers as numbers (a wrong one 422s on its field)."""

    def number(name: str, default: int) -> Any:
        value = str(form.get(name, "")).strip()
        return int(value) if value.isdigit() else (value or default)

    locale = str(form.get("locale", t.locale))
    return {
        "cadence": str(form.get("cadence", "weekly")),
        "weekday": number("weekday", 0),
        "day_of_month": number("day_of_month", 1),
        "hour": number("hour", 8),
        "recipients": [r.strip() for r in str(form.get("recipients", "")).replace(";", ",").split(",") if r.strip()],
        "locale": locale if locale in ("he", "fa", "en") else t.locale,
    }
