"""The promotion screens: the list, a new promotion (its audience previewed with counts and a
masked sample before it is saved, its texts per language), and a promotion's page with its
progress while it sends, its delivery report per text, what it brought, and the actions its
status allows (schedule, pause, resume, cancel, approve).

The pure parts (reading the form into the gateway's body, which actions a status offers, the
progress and delivery rate) are plain functions at the top, unit-tested alone. The gateway
decides every call: marketing and admins create and send; a sales manager reads and approves a
large promotion, never the one who scheduled it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from crm_console.api import Answer, ApiError
from crm_console.dates import picked_date, picked_datetime
from crm_console.forms import (
    CURRENCIES,
    Refusal,
    answer_or_refusal,
    ascii_digits,
    form_errors,
    idempotency_key,
    parse_money,
)
from crm_console.i18n import Translator, words
from crm_console.session import Session
from crm_console.web import api, ctx, local_datetime, menu_item
from crm_console.words_promotions import WORDS

router = APIRouter()
menu_item("promo_promotions", "/marketing/promotions", "marketing", "admin", "sales_manager")
menu_item("promo_lists", "/marketing/audience-lists", "marketing", "admin")
words(WORDS)

LIST_SIZE = 50
# The console's languages and the locale each text is written for.
TEXT_LOCALES = {"he": "he-IL", "fa": "fa-IR", "en": "en-US"}
# The form's fields of each A/B variant's texts: text_he_body is A's Hebrew, text_b_he_body B's.
VARIANT_FIELDS = {"A": "text_", "B": "text_b_"}
MAX_TEST_PERCENT = 50
MAX_WAIT_HOURS = 168
TEST_PERCENTS = (0, 10, 20, 30, 50)
AUDIENCE_WORDS = ("tags", "cities", "sources", "products")
# The audience's open-ticket choice ("" either).
OPEN_TICKETS = ("some", "none")
AUDIENCE_DATES = ("purchased_after", "purchased_before", "last_purchased_after", "last_purchased_before")
FIELDS = (
    "name",
    "list_id",
    "channel",
    "link_url",
    "sms_part_price",
    "min_lifetime_value",
    "locales",
    "texts",
    *AUDIENCE_WORDS,
    *AUDIENCE_DATES,
    *(f"{prefix}{lang}" for prefix in VARIANT_FIELDS.values() for lang in TEXT_LOCALES),
    "test_percent",
    "winner_rule",
    "winner_wait_hours",
    "track_opens",
    "open_tickets",
)
ACTIONS = ("schedule", "pause", "resume", "cancel", "approve")
# The refusals a promotion's action shows on its page (403: approving one's own promotion).
ACTION_REFUSALS = (403, 409, 412, 422)
SENDING = frozenset({"scheduled", "sending"})
# Before it is sent (a draft, or waiting for a manager's approval) the page shows what it will cost.
ESTIMATED = frozenset({"draft", "awaiting_approval"})
_TEXT_FIELD = re.compile(r"^texts(?:\[(\d+)\]|\.(\d+))")
_LINE_FIELD = re.compile(r"^lines\[(\d+)\]\.(\w+)$")


# ------------------------------------------------------------------ pure parts (no I/O)


def word_list(text: str) -> list[str]:
    """Comma-separated words (the Persian comma too, and line breaks), trimmed, empty ones dropped."""
    spaced = text.replace("،", ",").replace("\n", ",")
    return [word.strip() for word in spaced.split(",") if word.strip()]


def audience_input(form: Any, locale: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The audience criteria of the form as the gateway's body, and problems (field → word key).
    Days are whole days of the user's zone (a purchase window from the start of one day to the
    start of another)."""
    audience: dict[str, Any] = {name: word_list(str(form.get(name, ""))) for name in AUDIENCE_WORDS}
    problems: dict[str, str] = {}
    for name in AUDIENCE_DATES:
        day, ok = picked_date(form, name)
        if not ok:
            problems[name] = "promo_bad_date"
        elif day:
            audience[name] = local_datetime(f"{day}T00:00", locale)
    try:
        value = parse_money(str(form.get("min_lifetime_value", "")), str(form.get("min_lifetime_value_currency", "")))
    except ValueError:
        problems["min_lifetime_value"] = "promo_bad_amount"
        value = None
    if value:
        audience["min_lifetime_value_minor"] = value["amount_minor"]
        audience["currency_code"] = value["currency_code"]
    audience["locales"] = [loc for loc in form.getlist("locales") if loc in TEXT_LOCALES.values()]
    audience["list_id"] = str(form.get("list_id", "")).strip()
    audience["include_open_complaints"] = form.get("include_open_complaints") == "on"
    audience["include_low_satisfaction"] = form.get("include_low_satisfaction") == "on"
    if form.get("open_tickets") in OPEN_TICKETS:
        audience["open_tickets"] = form.get("open_tickets")
    return audience, problems


def promotion_input(form: Any, locale: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The whole form as createPromotion's body, and problems (field → word key): nothing is sent
    while there are any. A text is written per language; one left empty is not sent."""
    audience, problems = audience_input(form, locale)
    channel = str(form.get("channel", ""))
    texts = []
    for variant, prefix in VARIANT_FIELDS.items():
        for lang, text_locale in TEXT_LOCALES.items():
            written = str(form.get(f"{prefix}{lang}_body", "")).strip()
            if written:
                subject = str(form.get(f"{prefix}{lang}_subject", "")).strip() if channel == "email" else ""
                texts.append({"locale": text_locale, "subject": subject, "body": written, "variant": variant})
    if not texts:
        problems["texts"] = "promo_no_text"
    body: dict[str, Any] = {
        "name": str(form.get("name", "")).strip(),
        "channel": channel,
        "audience": audience,
        "texts": texts,
        "link_url": str(form.get("link_url", "")).strip(),
        "track_opens": form.get("track_opens") == "on",
        "request_id": idempotency_key(str(form.get("request_id", ""))),
    }
    body.update(ab_test_input(form, problems))
    try:
        price = parse_money(str(form.get("sms_part_price", "")), str(form.get("sms_part_price_currency", "")))
    except ValueError:
        problems["sms_part_price"] = "promo_bad_amount"
        price = None
    if price:
        # The form's one price is per SMS part or per e-mail, as the channel says.
        body["email_price_minor" if channel == "email" else "sms_part_price_minor"] = price["amount_minor"]
        body["currency_code"] = price["currency_code"]
    return body, problems


def ab_test_input(form: Any, problems: dict[str, str]) -> dict[str, Any]:
    """The A/B test's settings (sent only with a variant B text): the test share, the winner's
    rule, and the wait in hours (as the form asks) in minutes."""
    percent = ascii_digits(str(form.get("test_percent", "0")).strip()) or "0"
    hours = ascii_digits(str(form.get("winner_wait_hours", "")).strip())
    if not percent.isdigit() or int(percent) > MAX_TEST_PERCENT:
        problems["test_percent"] = "promo_bad_percent"
        return {}
    if hours and (not hours.isdigit() or not 1 <= int(hours) <= MAX_WAIT_HOURS):
        problems["winner_wait_hours"] = "promo_bad_hours"
        return {}
    if not int(percent):
        return {}
    return {
        "test_percent": int(percent),
        "winner_rule": str(form.get("winner_rule", "clicks")),
        "winner_wait_minutes": int(hours) * 60 if hours else 0,
    }


def placed_errors(field_errors: dict[str, str], texts: list[dict[str, Any]]) -> dict[str, str]:
    """The gateway's 422 on the form's fields: `texts[1].body` (`texts.1.body` when the gateway's
    own validation answers) is the second text sent, which is
    the form's text of that text's language; `audience.tags` is the tags field."""
    languages = {loc: lang for lang, loc in TEXT_LOCALES.items()}
    renamed = {}
    for key, message in field_errors.items():
        text = _TEXT_FIELD.match(key)
        if text and int(text.group(1) or text.group(2)) < len(texts):
            named = texts[int(text.group(1) or text.group(2))]
            prefix = VARIANT_FIELDS.get(named.get("variant", "A"), "text_")
            key = f"{prefix}{languages.get(named['locale'], 'he')}"
        elif key == "winner_wait_minutes":
            key = "winner_wait_hours"
        elif key.startswith(("sms_part_price", "email_price")) or key == "currency_code":
            key = "sms_part_price"
        elif key.startswith("audience.min_lifetime_value") or key == "audience.currency_code":
            key = "min_lifetime_value"
        renamed[key] = message
    return form_errors(renamed, FIELDS)


def actions(promotion: dict[str, Any], session: Session) -> list[str]:
    """What the promotion's status lets this user do (the gateway checks again): marketing and
    admins schedule a draft, pause what is scheduled or sending, resume what is paused and cancel
    anything unfinished; managers and admins approve a large one."""
    status = str(promotion.get("status", ""))
    offered: list[str] = []
    if session.has_any("admin", "marketing"):
        offered += {
            "draft": ["schedule", "cancel"],
            "scheduled": ["pause", "cancel"],
            "sending": ["pause", "cancel"],
            "paused": ["resume", "cancel"],
            "awaiting_approval": ["cancel"],
        }.get(status, [])
    if status == "awaiting_approval" and session.has_any("admin", "sales_manager"):
        offered.insert(0, "approve")
    return offered


@dataclass(frozen=True)
class Progress:
    """A <progress> element's state; no `value` draws it indeterminate (the audience still being resolved)."""

    value: int | None
    maximum: int
    finished: bool


def promotion_progress(promotion: dict[str, Any]) -> Progress:
    status = str(promotion.get("status", ""))
    recipients, processed = int(promotion.get("recipients", 0)), int(promotion.get("processed", 0))
    if status in ("completed", "cancelled"):
        return Progress(max(processed, 1) if status == "completed" else processed, max(recipients, 1), True)
    if not promotion.get("audience_resolved") and status == "sending":
        return Progress(None, 1, False)
    return Progress(min(processed, recipients), max(recipients, 1), status not in SENDING)


def delivery_rate(row: dict[str, Any]) -> float | None:
    """Delivered of those whose fate is known (delivered + undelivered); None before any receipt."""
    known = int(row.get("delivered", 0)) + int(row.get("undelivered", 0))
    return int(row.get("delivered", 0)) / known if known else None


# ------------------------------------------------------------------ list


@router.get("/marketing/promotions", response_class=HTMLResponse)
async def promotions(request: Request, page_token: str = "") -> Response:
    session = ctx(request).require(request)
    found = (
        await api(request).call(
            "listPromotions", session.token, query={"page_size": LIST_SIZE, "page_token": page_token}
        )
    ).body
    return ctx(request).render(
        request,
        "marketing_promotions.html",
        session,
        found=found,
        progress={p["id"]: promotion_progress(p) for p in found["promotions"]},
        can_create=session.has_any("admin", "marketing"),
    )


# ------------------------------------------------------------------ a new promotion


async def form_page(request: Request, session: Session, **extra: Any) -> HTMLResponse:
    lists = (await api(request).call("listAudienceLists", session.token, query={"page_size": LIST_SIZE})).body
    return ctx(request).render(
        request,
        "marketing_promotion_form.html",
        session,
        lists=lists["lists"],
        form=extra.get("form") or {},
        preview=extra.get("preview"),
        currencies=CURRENCIES,
        text_locales=TEXT_LOCALES,
        test_percents=TEST_PERCENTS,
        request_id=extra.get("request_id") or idempotency_key(""),
        errors=extra.get("errors", {}),
        notice=extra.get("notice", ""),
        status_code=extra.get("status_code", 200),
    )


def _typed(form: Any) -> dict[str, Any]:
    """The form as typed, to fill it again after a preview or a refusal."""
    typed: dict[str, Any] = {key: str(value) for key, value in form.items() if key not in ("csrf", "locales")}
    typed["locales"] = form.getlist("locales")
    return typed


@router.get("/marketing/promotions/new", response_class=HTMLResponse)
async def new_promotion(request: Request, list_id: str = "") -> Response:
    """A blank form; `list_id` picks an uploaded list as the audience (its page links here)."""
    return await form_page(request, ctx(request).require(request), form={"list_id": list_id})


@router.post("/marketing/promotions/new")
async def create_promotion(request: Request) -> Response:
    """One form, two buttons: "preview" counts the audience and shows a sample (nothing is
    saved); "create" saves the draft and opens it."""
    session, form = await ctx(request).signed_form(request)
    t = Translator(ctx(request).locale_of(request))
    body, problems = promotion_input(form, t.locale)
    kept = {"form": _typed(form), "request_id": body["request_id"]}
    if form.get("action") == "preview":
        problems.pop("texts", None)
        if problems:
            return await form_page(request, session, errors={k: t(v) for k, v in problems.items()}, **kept)
        call = api(request).call(
            "previewAudience", session.token, body={"channel": body["channel"], "audience": body["audience"]}
        )
        preview = await _refusal_on_fields(call, body, t)
        if isinstance(preview, Refusal):
            return await form_page(request, session, **preview.page(), **kept)
        return await form_page(request, session, preview=preview.body, **kept)
    if problems:
        return await form_page(request, session, errors={k: t(v) for k, v in problems.items()}, status_code=422, **kept)
    sent = await _refusal_on_fields(api(request).call("createPromotion", session.token, body=body), body, t)
    if isinstance(sent, Refusal):
        return await form_page(request, session, **sent.page(), **kept)
    return RedirectResponse(f"/marketing/promotions/{quote(sent.body['id'])}", status_code=303)


async def _refusal_on_fields(call: Awaitable[Answer], body: dict[str, Any], t: Translator) -> Answer | Refusal:
    """The gateway's answer, or its 409/422 placed on the form's fields (texts by language)."""
    try:
        return await call
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        errors = placed_errors(exc.field_errors, body["texts"])
        notice = errors.pop("", "") or ("" if errors else str(exc.problem.get("detail") or exc.status))
        return Refusal(errors, notice or ("" if errors else t("promo_refused")), exc.status)


# ------------------------------------------------------------------ one promotion


async def promotion_page(request: Request, session: Session, promotion_id: str, **extra: Any) -> HTMLResponse:
    report = (await api(request).call("getPromotionReport", session.token, path={"promotion_id": promotion_id})).body
    promotion = report["promotion"]
    offered = actions(promotion, session)
    estimate = None
    if promotion["status"] in ESTIMATED and not extra.get("part"):
        path = {"promotion_id": promotion_id}
        estimate = (await api(request).call("estimatePromotion", session.token, path=path)).body
    errors, notice = extra.get("errors", {}), extra.get("notice", "")
    if errors and "schedule" not in offered:  # the field is not on the page any more: say it above
        notice, errors = notice or " ".join(errors.values()), {}
    return ctx(request).render(
        request,
        "marketing_promotion_progress.html" if extra.get("part") else "marketing_promotion.html",
        session,
        promotion=promotion,
        report=report,
        rates={row["locale"]: delivery_rate(row) for row in [report["total"], *report["variants"]]},
        progress=promotion_progress(promotion),
        actions=offered,
        estimate=estimate,
        errors=errors,
        notice=notice,
        status_code=extra.get("status_code", 200),
    )


@router.get("/marketing/promotions/{promotion_id}", response_class=HTMLResponse)
async def promotion(request: Request, promotion_id: str) -> Response:
    return await promotion_page(request, ctx(request).require(request), promotion_id)


@router.get("/marketing/promotions/{promotion_id}/progress", response_class=HTMLResponse)
async def promotion_progress_part(request: Request, promotion_id: str) -> Response:
    """The progress and delivery part alone: static/marketing.js swaps it in while it sends."""
    return await promotion_page(request, ctx(request).require(request), promotion_id, part=True)


@router.post("/marketing/promotions/{promotion_id}/{action}")
async def act(request: Request, promotion_id: str, action: str) -> Response:
    """Schedule (at the picked time, empty: now), pause, resume, cancel or approve; a refusal
    (a time in the past, an audience that reaches nobody, a status that changed meanwhile, one's
    own approval) is shown on the page."""
    session, form = await ctx(request).signed_form(request)
    if action not in ACTIONS:
        return await promotion_page(request, session, promotion_id, status_code=404)
    t = Translator(ctx(request).locale_of(request))
    body: dict[str, Any] = {}
    if action == "schedule":
        wall_clock, ok = picked_datetime(form, "send_time")
        if not ok:
            errors = {"send_time": t("promo_bad_date")}
            return await promotion_page(request, session, promotion_id, errors=errors, status_code=422)
        if wall_clock:
            body["send_time"] = local_datetime(wall_clock, t.locale)
        # The version the page showed: a promotion changed meanwhile is a 409, not a surprise.
        version = str(form.get("row_version", ""))
        body["row_version"] = int(version) if version.isdigit() and len(version) < 10 else 0
    operation = f"{action}Promotion"
    call = api(request).call(operation, session.token, path={"promotion_id": promotion_id}, body=body or None)
    sent = await answer_or_refusal(call, ("send_time",), t, ACTION_REFUSALS)
    if isinstance(sent, Refusal):
        return await promotion_page(request, session, promotion_id, **sent.page())
    return RedirectResponse(f"/marketing/promotions/{quote(promotion_id)}", status_code=303)


# ------------------------------------------------------------------ static audience lists (CSV)


async def lists_page(request: Request, session: Session, **extra: Any) -> HTMLResponse:
    found = (
        await api(request).call(
            "listAudienceLists",
            session.token,
            query={"page_size": LIST_SIZE, "page_token": extra.get("page_token", "")},
        )
    ).body
    return ctx(request).render(
        request,
        "marketing_audience_lists.html",
        session,
        found=found,
        form=extra.get("form", {}),
        errors=extra.get("errors", {}),
        line_errors=extra.get("line_errors", []),
        # A fresh key per form shown: submitting the same form twice returns the first list.
        idempotency_key=idempotency_key(""),
        status_code=extra.get("status_code", 200),
    )


@router.get("/marketing/audience-lists", response_class=HTMLResponse)
async def audience_lists(request: Request, page_token: str = "") -> Response:
    return await lists_page(request, ctx(request).require(request), page_token=page_token)


def line_refusals(field_errors: dict[str, str]) -> list[tuple[int, str, str]]:
    """An all-or-nothing refusal's lines (`lines[5].phone_number`) as (line, column, problem)."""
    found = []
    for key, message in field_errors.items():
        line = _LINE_FIELD.match(key)
        if line:
            found.append((int(line.group(1)), line.group(2), message))
    return sorted(found)


@router.post("/marketing/audience-lists")
async def upload_audience_list(request: Request) -> Response:
    """The file goes to the gateway as text/csv; a refusal (not UTF-8, no known column, with
    all-or-nothing the wrong lines) comes back on the form, a list opens its page."""
    session, form = await ctx(request).signed_form(request, max_files=1, max_fields=10)
    t = Translator(ctx(request).locale_of(request))
    chosen = {"name": str(form.get("name", "")).strip(), "all_or_nothing": form.get("all_or_nothing") == "on"}
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await lists_page(
            request, session, form=chosen, errors={"file": t("promo_file_missing")}, status_code=422
        )
    settings = ctx(request).settings
    if upload.size is not None and upload.size > settings.max_upload_bytes:
        return await lists_page(request, session, form=chosen, errors={"file": t("promo_too_large")}, status_code=413)
    try:
        answer = await api(request).call(
            "importAudienceList",
            session.token,
            query={"name": chosen["name"] or upload.filename, "all_or_nothing": chosen["all_or_nothing"]},
            headers={"Idempotency-Key": idempotency_key(str(form.get("idempotency_key", "")))},
            content=await upload.read(),
            content_type="text/csv",
            timeout_seconds=settings.upload_timeout_seconds,
        )
    except ApiError as exc:
        if exc.status not in (413, 415, 422):
            raise
        lines = line_refusals(exc.field_errors)
        errors = {} if lines else {"file": t("promo_too_large") if exc.status == 413 else _file_problem(exc)}
        return await lists_page(request, session, form=chosen, errors=errors, line_errors=lines, status_code=exc.status)
    return RedirectResponse(f"/marketing/audience-lists/{quote(answer.body['id'])}", status_code=303)


def _file_problem(exc: ApiError) -> str:
    errors = exc.field_errors
    return errors.get("content") or errors.get("name") or str(exc.problem.get("detail", ""))


@router.get("/marketing/audience-lists/{list_id}", response_class=HTMLResponse)
async def audience_list(request: Request, list_id: str) -> Response:
    session = ctx(request).require(request)
    found = (await api(request).call("getAudienceList", session.token, path={"list_id": list_id})).body
    return ctx(request).render(request, "marketing_audience_list.html", session, found=found)
