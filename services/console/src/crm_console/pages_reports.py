"""The report builder: pick measures, up to two dimensions, a period in the Gregorian, Jalali or
Hebrew calendar and a range; see the table with its total and a chart; download it as CSV or XLSX;
save it for oneself or share it with roles of one's team. Every figure is the gateway's, held to
the caller (a rep sees their own facts), and a saved report runs in the reach of whoever opens it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import QueryParams

from crm_console import pages_report_mail as report_mail
from crm_console.api import ApiError
from crm_console.charts import BarChart, bar_chart
from crm_console.dates import picked_date
from crm_console.forms import Refusal, answer_or_refusal
from crm_console.i18n import Translator, words
from crm_console.pages_retention import customer_names
from crm_console.session import Session
from crm_console.web import api, ctx, menu_item

router = APIRouter()
menu_item("report_builder", "/reports/builder", "admin", "marketing", "sales_manager", "sales_rep")
SHARE_ROLES = ("sales_manager", "sales_rep", "marketing")
# Bars a chart draws (the table has every row).
CHART_BARS = 30

words(
    {
        "report_builder": {"he": "מחולל דוחות", "fa": "گزارش‌ساز", "en": "Report builder"},
        "rb_measures": {"he": "מה לספור", "fa": "چه بشماریم", "en": "Measures"},
        "rb_by": {"he": "לפי", "fa": "بر حسب", "en": "By"},
        "rb_then_by": {"he": "ואז לפי", "fa": "سپس بر حسب", "en": "Then by"},
        "rb_nothing": {"he": "—", "fa": "—", "en": "—"},
        "rb_grain": {"he": "תקופה", "fa": "دوره", "en": "Period"},
        "rb_calendar": {"he": "לוח שנה", "fa": "تقویم", "en": "Calendar"},
        "rb_week_start": {"he": "השבוע מתחיל ב", "fa": "آغاز هفته", "en": "Week starts on"},
        "rb_range": {"he": "טווח", "fa": "بازه", "en": "Range"},
        "rb_custom": {"he": "תאריכים שאבחר", "fa": "تاریخ‌های دلخواه", "en": "Dates I choose"},
        "rb_from": {"he": "מתאריך", "fa": "از تاریخ", "en": "From"},
        "rb_to": {"he": "עד תאריך", "fa": "تا تاریخ", "en": "To"},
        "rb_show": {"he": "הצגה", "fa": "نمایش", "en": "Show"},
        "rb_total": {"he": "סה״כ", "fa": "جمع", "en": "Total"},
        "rb_days": {"he": "הימים {start} עד {end}", "fa": "روزهای {start} تا {end}", "en": "Days {start} to {end}"},
        "rb_download": {"he": "הורדה", "fa": "دریافت", "en": "Download"},
        "rb_save": {"he": "שמירת הדוח", "fa": "ذخیره گزارش", "en": "Save this report"},
        "rb_name": {"he": "שם", "fa": "نام", "en": "Name"},
        "rb_share": {"he": "לשתף עם", "fa": "اشتراک با", "en": "Share with"},
        "rb_team_only": {"he": "רק בצוות שלי", "fa": "فقط تیم من", "en": "My team only"},
        "rb_saved": {"he": "דוחות שמורים", "fa": "گزارش‌های ذخیره‌شده", "en": "Saved reports"},
        "rb_no_saved": {"he": "אין דוחות שמורים.", "fa": "گزارش ذخیره‌شده‌ای نیست.", "en": "No saved reports."},
        "rb_delete": {"he": "מחיקה", "fa": "حذف", "en": "Delete"},
        "rb_no_rows": {
            "he": "אין נתונים בטווח הזה.",
            "fa": "در این بازه داده‌ای نیست.",
            "en": "Nothing in this range.",
        },
        "rb_chart": {"he": "{measure} לפי {by}", "fa": "{measure} بر حسب {by}", "en": "{measure} by {by}"},
        "rb_role_sales_manager": {"he": "מנהלי מכירות", "fa": "مدیران فروش", "en": "Sales managers"},
        "rb_role_sales_rep": {"he": "נציגי מכירות", "fa": "نمایندگان فروش", "en": "Sales reps"},
        "rb_role_marketing": {"he": "שיווק", "fa": "بازاریابی", "en": "Marketing"},
        "rbm_leads": {"he": "לידים", "fa": "سرنخ‌ها", "en": "Leads"},
        "rbm_speed_to_assign_seconds": {
            "he": "זמן עד שיוך (שניות)",
            "fa": "زمان تا تخصیص (ثانیه)",
            "en": "Time to assign (seconds)",
        },
        "rbm_deals_won": {"he": "עסקאות שנסגרו", "fa": "معاملات موفق", "en": "Deals won"},
        "rbm_deals_lost": {"he": "עסקאות שאבדו", "fa": "معاملات ناموفق", "en": "Deals lost"},
        "rbm_win_rate": {"he": "שיעור זכייה", "fa": "نرخ موفقیت", "en": "Win rate"},
        "rbm_revenue": {"he": "הכנסות", "fa": "درآمد", "en": "Revenue"},
        "rbm_tickets": {"he": "פניות שירות", "fa": "تیکت‌ها", "en": "Tickets"},
        "rbm_sla_breaches": {"he": "הפרות SLA", "fa": "نقض SLA", "en": "SLA breaches"},
        "rbm_resolution_seconds": {
            "he": "זמן טיפול (שניות)",
            "fa": "زمان حل (ثانیه)",
            "en": "Time to resolve (seconds)",
        },
        "rbm_messages": {"he": "הודעות", "fa": "پیام‌ها", "en": "Messages"},
        "rbm_deals_reached": {
            "he": "עסקאות שהגיעו לשלב",
            "fa": "معاملات رسیده به مرحله",
            "en": "Deals reaching the stage",
        },
        "rbm_cost": {"he": "עלות קמפיינים", "fa": "هزینه کمپین‌ها", "en": "Campaign cost"},
        "rbd_source": {"he": "מקור", "fa": "منبع", "en": "Source"},
        "rbd_campaign": {"he": "קמפיין", "fa": "کمپین", "en": "Campaign"},
        "rbd_rep": {"he": "נציג", "fa": "نماینده", "en": "Rep"},
        "rbd_team": {"he": "צוות", "fa": "تیم", "en": "Team"},
        "rbd_pipeline": {"he": "תהליך מכירה", "fa": "فرایند فروش", "en": "Pipeline"},
        "rbd_product_line": {"he": "קו מוצרים", "fa": "خط محصول", "en": "Product line"},
        "rbd_city": {"he": "עיר", "fa": "شهر", "en": "City"},
        "rbd_stage": {"he": "שלב", "fa": "مرحله", "en": "Stage"},
        "rbd_period": {"he": "תקופה", "fa": "دوره", "en": "Period"},
        "rbd_kind": {"he": "סוג פנייה", "fa": "نوع تیکت", "en": "Ticket kind"},
        "rbd_channel": {"he": "ערוץ", "fa": "کانال", "en": "Channel"},
        "rbd_priority": {"he": "עדיפות", "fa": "اولویت", "en": "Priority"},
        "rbd_queue": {"he": "תור", "fa": "صف", "en": "Queue"},
        "rbd_agent": {"he": "נציג שירות", "fa": "کارشناس", "en": "Agent"},
        "rbd_status": {"he": "מצב", "fa": "وضعیت", "en": "Status"},
        "rbd_promotion": {"he": "מבצע", "fa": "کمپین پیامکی", "en": "Promotion"},
        "rbg_day": {"he": "יום", "fa": "روز", "en": "Day"},
        "rbg_week": {"he": "שבוע", "fa": "هفته", "en": "Week"},
        "rbg_month": {"he": "חודש", "fa": "ماه", "en": "Month"},
        "rbg_quarter": {"he": "רבעון", "fa": "فصل", "en": "Quarter"},
        "rbg_year": {"he": "שנה", "fa": "سال", "en": "Year"},
        "rbg_fiscal_year": {"he": "שנת כספים", "fa": "سال مالی", "en": "Fiscal year"},
        "rbc_gregorian": {"he": "לועזי", "fa": "میلادی", "en": "Gregorian"},
        "rbc_jalali": {"he": "פרסי (ג׳לאלי)", "fa": "خورشیدی", "en": "Persian (Jalali)"},
        "rbc_hebrew": {"he": "עברי", "fa": "عبری", "en": "Hebrew"},
        "rbw_": {"he": "לפי לוח השנה", "fa": "بر اساس تقویم", "en": "The calendar's custom"},
        "rbw_saturday": {"he": "שבת", "fa": "شنبه", "en": "Saturday"},
        "rbw_sunday": {"he": "ראשון", "fa": "یکشنبه", "en": "Sunday"},
        "rbw_monday": {"he": "שני", "fa": "دوشنبه", "en": "Monday"},
        "rbr_last_7_days": {"he": "7 הימים האחרונים", "fa": "۷ روز گذشته", "en": "Last 7 days"},
        "rbr_last_30_days": {"he": "30 הימים האחרונים", "fa": "۳۰ روز گذشته", "en": "Last 30 days"},
        "rbr_this_month": {"he": "החודש", "fa": "این ماه", "en": "This month"},
        "rbr_last_month": {"he": "החודש הקודם", "fa": "ماه گذشته", "en": "Last month"},
        "rbr_this_quarter": {"he": "הרבעון", "fa": "این فصل", "en": "This quarter"},
        "rbr_last_quarter": {"he": "הרבעון הקודם", "fa": "فصل گذشته", "en": "Last quarter"},
        "rbr_this_year": {"he": "השנה", "fa": "امسال", "en": "This year"},
        "rbr_last_year": {"he": "השנה הקודמת", "fa": "سال گذشته", "en": "Last year"},
    }
)


def definition_from(query: QueryParams) -> dict[str, Any]:
    """The report definition a builder form (its GET query) asks for."""
    dimensions = [d for d in (query.get("dim1", ""), query.get("dim2", "")) if d]
    definition: dict[str, Any] = {
        "measures": query.getlist("measure"),
        "dimensions": list(dict.fromkeys(dimensions)),
        "periods": {
            "grain": query.get("grain", "month"),
            "calendar": query.get("calendar", "gregorian"),
            "week_start": query.get("week_start", ""),
        },
    }
    chosen = query.get("range", "last_quarter")
    if chosen == "custom":
        # A Persian reader picks Jalali days; an unreadable one is sent as given, for the gateway's 422.
        for name, key in (("start", "start_date"), ("end", "end_date")):
            day, ok = picked_date(query, name)
            definition[key] = (day if ok else query.get(name, "?")) or None
    else:
        definition["range"] = chosen
    return definition


def form_from(definition: dict[str, Any]) -> dict[str, Any]:
    """A saved definition as the builder form's values (to show what a saved report asks)."""
    dimensions = [*definition.get("dimensions", []), "", ""]
    periods = definition.get("periods", {})
    return {
        "measures": definition.get("measures", []),
        "dim1": dimensions[0],
        "dim2": dimensions[1],
        "grain": periods.get("grain", "month"),
        "calendar": periods.get("calendar", "gregorian"),
        "week_start": periods.get("week_start", ""),
        "range": definition.get("range") or "custom",
        "start": definition.get("start_date") or "",
        "end": definition.get("end_date") or "",
    }


def cell(t: Translator, column: dict[str, Any], value: float | None) -> str:
    """A measure's value as the reader writes it: money in its currency, rates in percent."""
    if value is None:
        return "—"
    if column["unit"] == "money":
        return t.money({"amount_minor": int(value), "currency_code": column["currency_code"] or "ILS"})
    if column["unit"] == "ratio":
        return t.digits(f"{value * 100:.1f}%")
    if column["unit"] == "seconds":
        return t.number(round(value))
    return t.number(int(value))


def header(t: Translator, column: dict[str, Any]) -> str:
    prefix = "rbd_" if column["kind"] == "dimension" else "rbm_"
    name = t(prefix + column["name"])
    return f"{name} ({column['currency_code']})" if column["currency_code"] else name


def chart_of(t: Translator, result: dict[str, Any]) -> BarChart | None:
    """The first measure as bars, one per row (its dimension labels joined), at most CHART_BARS."""
    measures = [c for c in result["columns"] if c["kind"] == "measure"]
    if not result["rows"] or not measures or result["chart"]["type"] == "none":
        return None
    first = measures[0]
    # A series over periods shows its latest CHART_BARS periods (rows are oldest first); other
    # reports their largest rows (rows are largest first).
    rows = result["rows"][-CHART_BARS:] if result["chart"]["type"] == "line" else result["rows"][:CHART_BARS]
    items = [(" · ".join(r["labels"]), float(r["values"][0] or 0), cell(t, first, r["values"][0])) for r in rows]
    return bar_chart(items, rtl=t.dir == "rtl")


def chart_title(t: Translator, result: dict[str, Any]) -> str:
    """ "Leads by Source · Period": the chart's first measure by the report's dimensions."""
    measures = [c for c in result["columns"] if c["kind"] == "measure"]
    by = " · ".join(t("rbd_" + c["name"]) for c in result["columns"] if c["kind"] == "dimension")
    return t("rb_chart").replace("{measure}", header(t, measures[0])).replace("{by}", by) if measures else ""


async def with_source_names(request: Request, session: Session, result: dict[str, Any]) -> dict[str, Any]:
    """The result with each source's display name for its code (reporting keeps codes)."""
    at = [i for i, c in enumerate(result["columns"]) if c["kind"] == "dimension" and c["name"] == "source"]
    if not at:
        return result
    sources = (await api(request).call("listSources", session.token)).body["sources"]
    names = {s["code"]: s["display_name"] for s in sources}
    for row in result["rows"]:
        row["labels"] = [names.get(v, v) if i in at else v for i, v in enumerate(row["labels"])]
    return result


async def builder_page(request: Request, session: Session, **extra: Any) -> HTMLResponse:
    t = Translator(ctx(request).locale_of(request))
    client = api(request)
    catalog = (await client.call("getReportCatalog", session.token)).body
    saved = (await client.call("listSavedReports", session.token)).body["reports"]
    result = extra.get("result")
    if result:
        result = await with_source_names(request, session, result)
    dimensions = sorted({d for m in catalog["measures"] for d in m["dimensions"]}, key=lambda d: t("rbd_" + d))
    return ctx(request).render(
        request,
        "report_builder.html",
        session,
        catalog=catalog,
        dimensions=dimensions,
        saved=saved,
        form=extra.get("form") or form_from({}),
        result=result,
        chart=chart_of(t, result) if result else None,
        chart_title=chart_title(t, result) if result else "",
        header=lambda c: header(t, c),
        cell=lambda c, v: cell(t, c, v),
        errors=extra.get("errors", {}),
        notice=extra.get("notice", ""),
        query=extra.get("query", ""),
        saved_report=extra.get("saved_report"),
        mail=extra.get("mail"),
        weekdays=report_mail.WEEKDAYS,
        share_roles=SHARE_ROLES,
        request_id=uuid.uuid4().hex,
        status_code=extra.get("status_code", 200),
    )


FIELDS = (
    "measures",
    "dimensions",
    "periods.grain",
    "periods.calendar",
    "periods.week_start",
    "range",
    "start_date",
    "end_date",
)


@router.get("/reports/builder", response_class=HTMLResponse)
async def report_builder(request: Request) -> Response:
    session = ctx(request).require(request)
    query = request.query_params
    if "measure" not in query:
        return await builder_page(request, session)
    definition = definition_from(query)
    form = form_from(definition) | {"range": query.get("range", "last_quarter")}
    t = Translator(ctx(request).locale_of(request))
    answer = await answer_or_refusal(
        api(request).call("runReport", session.token, body=definition, query={"locale": t.locale}), FIELDS, t
    )
    if isinstance(answer, Refusal):
        return await builder_page(
            request, session, form=form, errors=answer.errors, notice=answer.notice, status_code=answer.status
        )
    return await builder_page(
        request, session, form=form, result=answer.body, query=urlencode(list(query.multi_items()))
    )


def _file(answer_raw: bytes, headers: Any) -> Response:
    return Response(
        answer_raw,
        media_type=headers.get("content-type", "application/octet-stream"),
        headers={"Content-Disposition": headers.get("content-disposition", "attachment")},
    )


@router.get("/reports/builder/export")
async def export(request: Request) -> Response:
    session = ctx(request).require(request)
    t = Translator(ctx(request).locale_of(request))
    file_format = "csv" if request.query_params.get("format") == "csv" else "xlsx"
    answer = await api(request).call(
        "exportReport",
        session.token,
        body=definition_from(request.query_params),
        query={"format": file_format, "locale": t.locale},
    )
    return _file(answer.raw, answer.headers)


@router.post("/reports/builder/save")
async def save(request: Request) -> Response:
    session, form = await ctx(request).signed_form(request)
    t = Translator(ctx(request).locale_of(request))
    query = QueryParams(str(form.get("query", "")))
    team_id = ""
    if form.get("team_only"):
        team_id = str((await api(request).call("getMe", session.token)).body["team_id"])
    definition = definition_from(query)
    body = {
        "name": str(form.get("name", "")),
        "definition": definition,
        "shared_roles": [r for r in form.getlist("share") if r in SHARE_ROLES],
        "team_id": team_id,
        "request_id": str(form.get("request_id", "")),
    }
    answer = await answer_or_refusal(api(request).call("createSavedReport", session.token, body=body), ("name",), t)
    if isinstance(answer, Refusal):
        return await builder_page(
            request, session, form=form_from(definition), errors=answer.errors, notice=answer.notice,
            status_code=answer.status,
        )  # fmt: skip
    return RedirectResponse(f"/reports/saved/{quote(answer.body['id'])}", status_code=303)


@router.get("/reports/saved/{report_id}", response_class=HTMLResponse)
async def saved_report(request: Request, report_id: str) -> Response:
    session = ctx(request).require(request)
    return await saved_report_page(request, session, report_id)


async def saved_report_page(request: Request, session: Session, report_id: str, **extra: Any) -> Response:
    """The saved report run now, with the caller's e-mail schedules of it (and a refused schedule
    form back with its errors)."""
    t = Translator(ctx(request).locale_of(request))
    client = api(request)
    found = (await client.call("getSavedReport", session.token, path={"report_id": report_id})).body
    form = form_from(found["definition"])
    refusal: Refusal = extra.get("schedule_refusal") or Refusal(status=200)
    mail = {
        "schedules": await report_mail.schedules_of(request, session, report_id),
        "refusal": refusal,
        "form": extra.get("schedule_form") or {"cadence": "weekly", "weekday": 6, "hour": 8, "locale": t.locale},
        "sent": request.query_params.get("mail") == "sent",
    }
    status = refusal.status
    try:
        result = await client.call(
            "runSavedReport", session.token, path={"report_id": report_id}, query={"locale": t.locale}
        )
    except ApiError as exc:
        if exc.status not in (403, 409):
            raise
        return await builder_page(
            request, session, form=form, notice=str(exc.problem.get("detail", "")), saved_report=found,
            status_code=exc.status, mail=mail,
        )  # fmt: skip
    return await builder_page(
        request, session, form=form, result=result.body, saved_report=found, mail=mail, status_code=status
    )


@router.get("/reports/saved/{report_id}/export")
async def export_saved(request: Request, report_id: str) -> Response:
    session = ctx(request).require(request)
    t = Translator(ctx(request).locale_of(request))
    file_format = "csv" if request.query_params.get("format") == "csv" else "xlsx"
    answer = await api(request).call(
        "exportSavedReport",
        session.token,
        path={"report_id": report_id},
        query={"format": file_format, "locale": t.locale},
    )
    return _file(answer.raw, answer.headers)


@router.post("/reports/saved/{report_id}/delete")
async def delete_saved(request: Request, report_id: str) -> Response:
    session, _ = await ctx(request).signed_form(request)
    await api(request).call("deleteSavedReport", session.token, path={"report_id": report_id})
    return RedirectResponse("/reports/builder", status_code=303)


@router.post("/reports/saved/{report_id}/schedules")
async def add_schedule(request: Request, report_id: str) -> Response:
    session, form = await ctx(request).signed_form(request)
    t = Translator(ctx(request).locale_of(request))
    body = report_mail.schedule_form(form, t) | {"request_id": str(form.get("request_id", ""))}
    answer = await answer_or_refusal(
        api(request).call("createReportSchedule", session.token, path={"report_id": report_id}, body=body),
        report_mail.FIELDS,
        t,
    )
    if isinstance(answer, Refusal):
        return await saved_report_page(request, session, report_id, schedule_refusal=answer, schedule_form=body)
    return RedirectResponse(f"/reports/saved/{quote(report_id)}#mail-h", status_code=303)


@router.post("/reports/schedules/{schedule_id}/send-now")
async def send_schedule_now(request: Request, schedule_id: str) -> Response:
    session, form = await ctx(request).signed_form(request)
    await api(request).call("sendReportScheduleNow", session.token, path={"schedule_id": schedule_id})
    report_id = str(form.get("report_id", ""))
    return RedirectResponse(f"/reports/saved/{quote(report_id)}?mail=sent#mail-h", status_code=303)


@router.post("/reports/schedules/{schedule_id}/delete")
async def delete_schedule(request: Request, schedule_id: str) -> Response:
    session, form = await ctx(request).signed_form(request)
    await api(request).call("deleteReportSchedule", session.token, path={"schedule_id": schedule_id})
    return RedirectResponse(f"/reports/saved/{quote(str(form.get('report_id', '')))}#mail-h", status_code=303)


TOP_CUSTOMERS = 10
menu_item("sales_funnel", "/reports/funnel", "admin", "marketing", "sales_manager", "sales_rep")
words(
    {
        "sales_funnel": {"he": "משפך, תגובה וערך", "fa": "قیف، پاسخ و ارزش", "en": "Funnel, response and value"},
        "fn_value": {"he": "ערך הלקוחות לפי פלח", "fa": "ارزش مشتریان بر حسب بخش", "en": "Customer value by segment"},
        "fn_segment": {"he": "פלח", "fa": "بخش", "en": "Segment"},
        "fn_customers": {"he": "לקוחות", "fa": "مشتریان", "en": "Customers"},
        "fn_bought": {"he": "קנו בסך", "fa": "مجموع خرید", "en": "Bought"},
        "fn_top": {"he": "הלקוחות הרווחיים ביותר", "fa": "سودآورترین مشتریان", "en": "The most valuable customers"},
        "fn_funnel": {"he": "משפך המכירה", "fa": "قیف فروش", "en": "The sales funnel"},
        "fn_group": {"he": "מקור", "fa": "منبع", "en": "Source"},
        "fn_all": {"he": "הכול", "fa": "همه", "en": "All"},
        "fn_none": {"he": "אין עסקאות בטווח.", "fa": "در این بازه معامله‌ای نیست.", "en": "No deals in this range."},
        "fn_speed": {
            "he": "מהירות התגובה מול שיעור הזכייה",
            "fa": "سرعت پاسخ در برابر نرخ موفقیت",
            "en": "Speed to lead against the win rate",
        },
        "fn_band": {"he": "תגובה ראשונה", "fa": "نخستین پاسخ", "en": "First response"},
        "fn_leads": {"he": "לידים", "fa": "سرنخ‌ها", "en": "Leads"},
        "fn_won": {"he": "נסגרו", "fa": "موفق", "en": "Won"},
        "fn_lost": {"he": "אבדו", "fa": "ناموفق", "en": "Lost"},
        "fn_win_rate": {"he": "שיעור זכייה", "fa": "نرخ موفقیت", "en": "Win rate"},
        "band_under_5_minutes": {"he": "עד 5 דקות", "fa": "تا ۵ دقیقه", "en": "Under 5 minutes"},
        "band_5_to_30_minutes": {"he": "5 עד 30 דקות", "fa": "۵ تا ۳۰ دقیقه", "en": "5–30 minutes"},
        "band_30_minutes_to_2_hours": {"he": "חצי שעה עד שעתיים", "fa": "نیم تا دو ساعت", "en": "30 minutes–2 hours"},
        "band_2_to_24_hours": {"he": "2 עד 24 שעות", "fa": "۲ تا ۲۴ ساعت", "en": "2–24 hours"},
        "band_over_a_day": {"he": "יותר מיום", "fa": "بیش از یک روز", "en": "Over a day"},
        "band_no_response": {"he": "לא נענו", "fa": "بی‌پاسخ", "en": "Never answered"},
    }
)


@router.get("/reports/funnel", response_class=HTMLResponse)
async def funnel_page(request: Request) -> Response:
    """The default pipeline's funnel of the last 90 days per source, with stage-to-stage
    conversion, and the speed-to-lead curve of the same days (win rate per band, as bars)."""
    session = ctx(request).require(request)
    t = Translator(ctx(request).locale_of(request))
    client = api(request)
    since = {"start_time": (datetime.now(UTC) - timedelta(days=90)).isoformat(timespec="seconds")}
    funnel = (await client.call("getFunnelReport", session.token, query={"dimension": "source", **since})).body
    speed = (await client.call("getSpeedToLeadReport", session.token, query=since)).body["bands"]
    sources = (await client.call("listSources", session.token)).body["sources"]
    names = {s["code"]: s["display_name"] for s in sources}
    worth = (await client.call("getCustomerValueReport", session.token, query={"top": TOP_CUSTOMERS})).body
    people = await customer_names(request, session, [c["customer_id"] for c in worth["top"]])
    first = funnel["total"]["reached"][0] if funnel["total"]["reached"] else 0
    chart = bar_chart(
        [
            (
                t("band_" + b["band"]),
                b["win_rate"] or 0.0,
                "—" if b["win_rate"] is None else t.digits(f"{b['win_rate'] * 100:.0f}%"),
            )
            for b in speed
        ],
        rtl=t.dir == "rtl",
    )
    return ctx(request).render(
        request,
        "report_funnel.html",
        session,
        funnel=funnel,
        group_names=names,
        opened=first,
        speed=speed,
        speed_chart=chart,
        worth=worth,
        people=people,
    )
