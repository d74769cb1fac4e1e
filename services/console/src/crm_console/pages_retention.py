"""Retention call lists: a manager makes this week's list of the team's customers at risk and reads
what it brought against the control group; a rep works their calls — each customer's reasons and
the offer to make — and records the answers. Everything is held to the caller by the gateway: a rep
is shown their own calls only, and a list outside a manager's team is not found."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from crm_console.api import ApiError
from crm_console.forms import Refusal, answer_or_refusal
from crm_console.i18n import Translator, words
from crm_console.session import Session
from crm_console.web import api, ctx, menu_item

router = APIRouter()
menu_item("retention", "/retention", "sales_rep", "sales_manager", "admin")
MAKERS = ("sales_manager", "admin")
LIST_FIELDS = ("name", "threshold", "control_share", "max_entries")
RESPONSES = ("reached", "offer_accepted", "declined", "unreachable", "churned")
# Names and numbers are the customers service's (reporting keeps ids): the page reads at most this
# many customers, a few at a time; the rest show their id and link to their page.
NAMED_ENTRIES, READS_AT_ONCE = 100, 8

words(
    {
        "retention": {"he": "שימור לקוחות", "fa": "حفظ مشتریان", "en": "Retention"},
        "ret_new": {"he": "רשימת שיחות חדשה", "fa": "فهرست تماس تازه", "en": "New call list"},
        "ret_name": {"he": "שם", "fa": "نام", "en": "Name"},
        "ret_threshold": {"he": "סיכון מינימלי (%)", "fa": "حداقل ریسک (٪)", "en": "Lowest risk (%)"},
        "ret_control": {"he": "קבוצת ביקורת (%)", "fa": "گروه کنترل (٪)", "en": "Control group (%)"},
        "ret_max": {"he": "לכל היותר", "fa": "حداکثر", "en": "At most"},
        "ret_make": {"he": "הכנת הרשימה", "fa": "ساختن فهرست", "en": "Make the list"},
        "ret_lists": {"he": "רשימות", "fa": "فهرست‌ها", "en": "Lists"},
        "ret_none": {"he": "אין רשימות עדיין.", "fa": "هنوز فهرستی نیست.", "en": "No lists yet."},
        "ret_called": {"he": "לשיחה", "fa": "برای تماس", "en": "To call"},
        "ret_held": {"he": "בביקורת", "fa": "در کنترل", "en": "Held out"},
        "ret_customer": {"he": "לקוח", "fa": "مشتری", "en": "Customer"},
        "ret_risk": {"he": "סיכון", "fa": "ریسک", "en": "Risk"},
        "ret_reasons": {"he": "למה", "fa": "چرا", "en": "Why"},
        "ret_offer": {"he": "מה להציע", "fa": "چه پیشنهادی", "en": "Offer"},
        "ret_rep": {"he": "נציג", "fa": "نماینده", "en": "Rep"},
        "ret_answer": {"he": "תשובה", "fa": "پاسخ", "en": "Answer"},
        "ret_control_row": {
            "he": "קבוצת ביקורת: לא מתקשרים",
            "fa": "گروه کنترل: تماس نگیرید",
            "en": "Control: not called",
        },
        "ret_number": {"he": "מספר בין 0 ל-100", "fa": "عددی بین ۰ و ۱۰۰", "en": "A number from 0 to 100"},
        "ret_whole": {"he": "מספר שלם", "fa": "عدد صحیح", "en": "A whole number"},
        "ret_save": {"he": "שמירה", "fa": "ذخیره", "en": "Save"},
        "ret_report": {"he": "מה הרשימה הביאה", "fa": "دستاورد فهرست", "en": "What the list brought"},
        "ret_group_called": {"he": "התקשרנו", "fa": "تماس گرفته شد", "en": "Called"},
        "ret_group_control": {"he": "ביקורת", "fa": "کنترل", "en": "Control"},
        "ret_customers": {"he": "לקוחות", "fa": "مشتریان", "en": "Customers"},
        "ret_buyers": {"he": "קנו מאז", "fa": "از آن زمان خریدند", "en": "Bought since"},
        "ret_revenue": {"he": "הכנסה", "fa": "درآمد", "en": "Revenue"},
        "ret_per_customer": {"he": "ללקוח", "fa": "به ازای مشتری", "en": "Per customer"},
        "ret_retained": {
            "he": "הכנסה שנשמרה מעבר לביקורת",
            "fa": "درآمد حفظ‌شده فراتر از گروه کنترل",
            "en": "Revenue retained beyond the control group",
        },
        "ret_answers": {"he": "תשובות", "fa": "پاسخ‌ها", "en": "Answers"},
        "resp_": {"he": "—", "fa": "—", "en": "—"},
        "resp_reached": {"he": "שוחחנו", "fa": "صحبت شد", "en": "Reached"},
        "resp_offer_accepted": {"he": "קיבל/ה את ההצעה", "fa": "پیشنهاد را پذیرفت", "en": "Offer accepted"},
        "resp_declined": {"he": "סירב/ה", "fa": "نپذیرفت", "en": "Declined"},
        "resp_unreachable": {"he": "לא זמין/ה", "fa": "در دسترس نبود", "en": "Unreachable"},
        "resp_churned": {"he": "עזב/ה", "fa": "رفته است", "en": "Churned"},
        "band_low": {"he": "נמוך", "fa": "کم", "en": "low"},
        "band_medium": {"he": "בינוני", "fa": "متوسط", "en": "medium"},
        "band_high": {"he": "גבוה", "fa": "زیاد", "en": "high"},
        "sig_no_purchase": {
            "he": "לא קנה/תה {value} ימים",
            "fa": "{value} روز خرید نکرده",
            "en": "No purchase for {value} days",
        },
        "sig_fewer_purchases": {
            "he": "פחות קניות מבעבר ({value} בחצי השנה האחרונה)",
            "fa": "خرید کمتر از گذشته ({value} در شش ماه اخیر)",
            "en": "Fewer purchases than before ({value} in the last half year)",
        },
        "sig_smaller_purchases": {
            "he": "קניות קטנות מבעבר",
            "fa": "خریدهای کوچک‌تر از گذشته",
            "en": "Smaller purchases than before",
        },
        "sig_complaints": {
            "he": "{value} תלונות לאחרונה",
            "fa": "{value} شکایت اخیر",
            "en": "{value} recent complaints",
        },
        "sig_sla_breaches": {
            "he": "{value} פניות באיחור",
            "fa": "{value} درخواست با تأخیر",
            "en": "{value} tickets past their SLA",
        },
        "sig_opted_out": {
            "he": "ביטל/ה הסכמה לדיוור",
            "fa": "رضایت تبلیغات را لغو کرد",
            "en": "Withdrew marketing consent",
        },
        "sig_no_contact": {
            "he": "אין קשר {value} ימים",
            "fa": "{value} روز بی‌ارتباط",
            "en": "No contact for {value} days",
        },
        "sig_lost_deals": {
            "he": "{value} עסקאות שאבדו",
            "fa": "{value} معامله از دست رفته",
            "en": "{value} deals lost",
        },
        "offer_service_recovery": {
            "he": "לתקן את השירות: שיחת מנהל ופיצוי",
            "fa": "جبران خدمت: تماس مدیر و جبران",
            "en": "Put the service right: a manager's call and a goodwill credit",
        },
        "offer_win_back_discount": {"he": "הנחת חזרה", "fa": "تخفیف بازگشت", "en": "A win-back discount"},
        "offer_loyalty_check_in": {"he": "שיחת נאמנות", "fa": "تماس وفاداری", "en": "A loyalty check-in"},
        "offer_cross_sell": {"he": "להציע: {sku}", "fa": "پیشنهاد: {sku}", "en": "Offer: {sku}"},
    }
)


def reason_text(t: Translator, reason: dict[str, Any]) -> str:
    return t(f"sig_{reason['signal']}").replace("{value}", t.number(int(reason["value"])))


def offer_text(t: Translator, offer: str) -> str:
    if offer.startswith("cross_sell:"):
        return t("offer_cross_sell").replace("{sku}", offer.split(":", 1)[1])
    return t(f"offer_{offer}")


def percent(value: str, default: float) -> float | None:
    """A form's percentage as a share (Persian digits allowed); None when it is not a number."""
    text = value.strip().translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")) or str(default * 100)
    try:
        return float(text) / 100
    except ValueError:
        return None


async def lists_page(request: Request, session: Session, **extra: Any) -> HTMLResponse:
    found = await api(request).call("listRetentionLists", session.token)
    return ctx(request).render(
        request,
        "retention_lists.html",
        session,
        lists=found.body["lists"],
        can_make=any(role in session.roles for role in MAKERS),
        form=extra.get("form", {}),
        errors=extra.get("errors", {}),
        notice=extra.get("notice", ""),
        request_id=uuid.uuid4().hex,
        status_code=extra.get("status_code", 200),
    )


@router.get("/retention", response_class=HTMLResponse)
async def lists(request: Request) -> Response:
    return await lists_page(request, ctx(request).require(request))


@router.post("/retention")
async def make_list(request: Request) -> Response:
    session, form = await ctx(request).signed_form(request)
    t = Translator(ctx(request).locale_of(request))
    sent = {name: str(form.get(name, "")).strip() for name in (*LIST_FIELDS, "request_id")}
    threshold, share = percent(sent["threshold"], 0.6), percent(sent["control_share"], 0.1)
    body: dict[str, Any] = {"name": sent["name"], "request_id": sent["request_id"]}
    errors = {}
    for name, value in (("threshold", threshold), ("control_share", share)):
        if value is None:
            errors[name] = t("ret_number")
        else:
            body[name] = round(value, 4)
    size = sent["max_entries"].translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789"))
    if size and not size.isdigit():
        errors["max_entries"] = t("ret_whole")
    elif size:
        body["max_entries"] = int(size)
    if errors:
        return await lists_page(request, session, form=sent, errors=errors, status_code=422)
    answer = await answer_or_refusal(api(request).call("createRetentionList", session.token, body=body), LIST_FIELDS, t)
    if isinstance(answer, Refusal):
        return await lists_page(
            request, session, form=sent, errors=answer.errors, notice=answer.notice, status_code=answer.status
        )
    return RedirectResponse(f"/retention/{quote(answer.body['id'])}", status_code=303)


async def _report(request: Request, session: Session, list_id: str) -> dict[str, Any] | None:
    """The list's report for those who may read it (a rep may not: 403), else None."""
    if not any(role in session.roles for role in MAKERS):
        return None
    try:
        found = await api(request).call("getRetentionReport", session.token, path={"list_id": list_id})
    except ApiError as exc:
        if exc.status in (403, 404):
            return None
        raise
    body: dict[str, Any] = found.body
    return body


async def customer_names(request: Request, session: Session, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The name and number of each customer the caller may read (another's is left out)."""
    gate = asyncio.Semaphore(READS_AT_ONCE)

    async def one(customer_id: str) -> tuple[str, dict[str, Any] | None]:
        async with gate:
            try:
                found = await api(request).call("getCustomer", session.token, path={"customer_id": customer_id})
            except ApiError as exc:
                if exc.status in (403, 404):
                    return customer_id, None
                raise
        return customer_id, found.body

    read = await asyncio.gather(*(one(c) for c in ids[:NAMED_ENTRIES]))
    return {c: body for c, body in read if body is not None}


@router.get("/retention/{list_id}", response_class=HTMLResponse)
async def one_list(request: Request, list_id: str) -> Response:
    session = ctx(request).require(request)
    t = Translator(ctx(request).locale_of(request))
    found = (await api(request).call("getRetentionList", session.token, path={"list_id": list_id})).body
    entries = [
        {
            **e,
            "reason_lines": [reason_text(t, r) for r in e["reasons"]],
            "offer_line": offer_text(t, e["offer"]),
        }
        for e in found["entries"]
    ]
    return ctx(request).render(
        request,
        "retention_list.html",
        session,
        list=found["list"],
        entries=entries,
        report=await _report(request, session, list_id),
        names=await customer_names(request, session, [e["customer_id"] for e in entries]),
        responses=RESPONSES,
    )


@router.post("/retention/{list_id}/entries/{customer_id}")
async def answer(request: Request, list_id: str, customer_id: str) -> Response:
    session, form = await ctx(request).signed_form(request)
    body = {"response": str(form.get("response", ""))}
    await api(request).call(
        "recordRetentionResponse", session.token, path={"list_id": list_id, "customer_id": customer_id}, body=body
    )
    return RedirectResponse(f"/retention/{quote(list_id)}#c-{quote(customer_id)}", status_code=303)
