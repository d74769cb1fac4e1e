"""The marketing screens: CSV lead imports with their progress and per-line errors, campaigns
with budget and cost, source and campaign reports with charts, and web-to-lead form keys.

The pure parts (an import's progress, a report period, bar charts that mirror in right to left,
the embed snippet) are plain functions at the top, unit-tested alone; the handlers below only
call the gateway with the user's token and render. The gateway decides every call: admins and
marketing import and keep form keys; sales managers also read campaigns and reports.
"""

from __future__ import annotations

import html
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from crm_console.api import Answer, ApiError
from crm_console.charts import bar_chart
from crm_console.dates import picked_date
from crm_console.forms import (
    CURRENCIES,
    Refusal,
    answer_or_refusal,
    changed_fields,
    form_original,
    form_state,
    idempotency_key,
    money_text,
    parse_money,
)
from crm_console.i18n import ZONES, Translator, words
from crm_console.session import Session
from crm_console.web import api, ctx, menu_item
from crm_console.words_marketing import WORDS

router = APIRouter()
menu_item("mkt_imports", "/marketing/imports", "marketing", "admin")
menu_item("mkt_campaigns", "/marketing/campaigns", "marketing", "admin", "sales_manager")
menu_item("mkt_reports", "/marketing/reports", "marketing", "admin", "sales_manager")
menu_item("mkt_web_forms", "/marketing/web-forms", "marketing", "admin")

LIST_SIZE = 100
MODES = ("skip_invalid", "all_or_nothing")

words(WORDS)


# ------------------------------------------------------------------ pure parts (no I/O)

FINISHED = frozenset({"completed", "rejected"})
# The web-to-lead endpoint (the gateway's submitWebForm; the key travels as the form field `key`).
SUBMISSION_PATH = "/api/v1/public/web-form-submissions"
FORM_LOCALES = {"he": "he-IL", "fa": "fa-IR", "en": "en-US"}


@dataclass(frozen=True)
class Progress:
    """A <progress> element's state: no ``value`` draws it indeterminate (rows still being read)."""

    value: int | None
    maximum: int
    finished: bool


def import_progress(lead_import: dict[str, Any]) -> Progress:
    """How far an import is. Phase 1 (validating) does not know the file's length, so it is
    indeterminate; phase 2 captures the valid rows, each a new lead or a duplicate's touch."""
    status = str(lead_import.get("status", ""))
    if status in FINISHED:
        return Progress(1, 1, True)
    if status != "importing":
        return Progress(None, 1, False)
    total = max(int(lead_import.get("rows_valid", 0)), 1)
    done = int(lead_import.get("rows_imported", 0)) + int(lead_import.get("duplicates", 0))
    return Progress(min(done, total), total, False)


def period(start: str, end: str, zone: ZoneInfo) -> dict[str, str]:
    """Report bounds from two calendar days of the user's zone (both included) as UTC instants;
    a day that does not parse is left out (the report then has no bound on that side)."""
    bounds: dict[str, str] = {}
    for name, text, shift in (("start_time", start, 0), ("end_time", end, 1)):
        try:
            day = date.fromisoformat(text) + timedelta(days=shift)
        except ValueError:
            continue
        bounds[name] = datetime.combine(day, time(), tzinfo=zone).astimezone(UTC).isoformat()
    return bounds


def main_currency(amounts: list[dict[str, Any] | None]) -> str:
    """The currency most amounts are in: a chart compares amounts of one currency only."""
    codes = Counter(str(a["currency_code"]) for a in amounts if a and a.get("currency_code"))
    return codes.most_common(1)[0][0] if codes else ""


def web_form_snippet(gateway_url: str, key: str, locale: str, labels: dict[str, str]) -> str:
    """The HTML a site owner pastes: a plain form posting to the gateway's public web-to-lead
    route with its key in the field ``key``. Labels in the console's language; the honeypot is
    clipped rather than pushed off to the left, which scrolls a right-to-left page sideways."""
    action = html.escape(gateway_url.rstrip("/") + SUBMISSION_PATH, quote=True)
    lang = html.escape(FORM_LOCALES.get(locale, "he-IL"), quote=True)
    direction = "ltr" if locale == "en" else "rtl"
    say = {k: html.escape(v) for k, v in labels.items()}
    return (
        f'<form method="post" action="{action}" dir="{direction}" lang="{locale}">\n'
        f'  <input type="hidden" name="key" value="{html.escape(key, quote=True)}">\n'
        f'  <input type="hidden" name="locale" value="{lang}">\n'
        f'  <label>{say["full_name"]} <input name="full_name" required maxlength="200"></label>\n'
        f'  <label>{say["phone"]} <input name="phone_number" type="tel" maxlength="32" dir="ltr"></label>\n'
        f'  <label>{say["email"]} <input name="email" type="email" maxlength="254" dir="ltr"></label>\n'
        '  <div aria-hidden="true" style="position:absolute;width:1px;height:1px;overflow:hidden;'
        'clip-path:inset(50%)"><input name="website" tabindex="-1" autocomplete="off"></div>\n'
        f'  <button type="submit">{say["send"]}</button>\n'
        "</form>\n"
    )


CAMPAIGN_FIELDS = ("source", "name", "starts_on", "ends_on", "budget", "actual_cost")
CAMPAIGN_MONEY = ("budget", "actual_cost")
# The refusals a campaign form shows on itself: campaigns carry no ETag, so no 412.
CAMPAIGN_REFUSALS = (409, 422)


def campaign_values(campaign: dict[str, Any]) -> dict[str, Any]:
    """A campaign as the edit form's values (also what its PATCH is compared with)."""

    def money(value: Any) -> dict[str, Any] | None:
        return (
            {"amount_minor": int(value["amount_minor"]), "currency_code": str(value["currency_code"])}
            if value
            else None
        )

    return {
        "name": str(campaign.get("name", "")),
        "starts_on": campaign.get("starts_on") or None,
        "ends_on": campaign.get("ends_on") or None,
        "budget": money(campaign.get("budget")),
        "actual_cost": money(campaign.get("actual_cost")),
    }


def campaign_input(form: Any) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The campaign form as the gateway's body (an empty date or amount is null), the text typed
    in each money field (shown again on a refusal), and the fields that do not parse (field →
    message key)."""
    values: dict[str, Any] = {"name": str(form.get("name", "")).strip()}
    typed: dict[str, str] = {}
    problems: dict[str, str] = {}
    for name in ("starts_on", "ends_on"):
        # Persian: picked in the Solar Hijri calendar (templates/_date.html).
        picked, ok = picked_date(form, name)
        values[name] = picked or None
        if not ok:
            problems[name] = "no_such_date"
    for name in CAMPAIGN_MONEY:
        typed[name] = str(form.get(f"{name}_amount", ""))
        try:
            values[name] = parse_money(typed[name], str(form.get(f"{name}_currency", "")))
        except ValueError:
            values[name], problems[name] = None, "mkt_bad_amount"
    return values, typed, problems


# ------------------------------------------------------------------ CSV lead imports


async def _sources_and_campaigns(request: Request, session: Session) -> tuple[list[Any], list[Any]]:
    sources = (await api(request).call("listSources", session.token)).body["sources"]
    campaigns = (await api(request).call("listCampaigns", session.token, query={"page_size": LIST_SIZE})).body
    return sources, sorted(campaigns["campaigns"], key=lambda c: (c["source"], c["name"]))


async def imports_page(request: Request, session: Session, **extra: Any) -> HTMLResponse:
    sources, campaigns = await _sources_and_campaigns(request, session)
    recent = (
        await api(request).call(
            "listLeadImports", session.token, query={"page_size": 20, "page_token": extra.get("page_token", "")}
        )
    ).body
    return ctx(request).render(
        request,
        "marketing_imports.html",
        session,
        sources=sources,
        campaigns=campaigns,
        imports=recent,
        modes=MODES,
        form=extra.get("form", {}),
        errors=extra.get("errors", {}),
        # A fresh key per form shown: submitting the same form twice returns the first import.
        idempotency_key=str(uuid.uuid4()),
        status_code=extra.get("status_code", 200),
    )


@router.get("/marketing/imports", response_class=HTMLResponse)
async def imports(request: Request, page_token: str = "") -> Response:
    return await imports_page(request, ctx(request).require(request), page_token=page_token)


@router.post("/marketing/imports")
async def upload(request: Request) -> Response:
    # The upload is spooled to disk by the form parser; only its bytes are read here.
    session, form = await ctx(request).signed_form(request, max_files=1, max_fields=10)
    chosen = {k: str(form.get(k, "")) for k in ("source", "campaign", "mode")}
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        t = Translator(ctx(request).locale_of(request))
        return await imports_page(
            request, session, form=chosen, errors={"file": t("mkt_file_missing")}, status_code=422
        )
    settings = ctx(request).settings
    if upload.size is not None and upload.size > settings.max_upload_bytes:
        t = Translator(ctx(request).locale_of(request))
        return await imports_page(request, session, form=chosen, errors={"file": t("mkt_too_large")}, status_code=413)
    content = await upload.read()
    query = {**chosen, "mode": chosen["mode"] if chosen["mode"] in MODES else MODES[0], "file_name": upload.filename}
    headers = {"Idempotency-Key": idempotency_key(str(form.get("idempotency_key", "")))}
    try:
        answer = await api(request).call(
            "importLeads",
            session.token,
            query=query,
            headers=headers,
            content=content,
            content_type="text/csv",
            timeout_seconds=settings.upload_timeout_seconds,
        )
    except ApiError as exc:
        if exc.status not in (413, 415, 422):
            raise
        t = Translator(ctx(request).locale_of(request))
        errors = exc.field_errors or {
            "file": t("mkt_too_large") if exc.status == 413 else str(exc.problem.get("detail", ""))
        }
        return await imports_page(request, session, form=chosen, errors=errors, status_code=exc.status)
    return RedirectResponse(f"/marketing/imports/{quote(answer.body['id'])}", status_code=303)


async def _lead_import(request: Request, session: Session, import_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (
        await api(request).call("getLeadImport", session.token, path={"lead_import_id": import_id})
    ).body
    return found


@router.get("/marketing/imports/{import_id}", response_class=HTMLResponse)
async def lead_import(request: Request, import_id: str) -> Response:
    session = ctx(request).require(request)
    found = await _lead_import(request, session, import_id)
    return ctx(request).render(request, "marketing_import.html", session, imp=found, progress=import_progress(found))


@router.get("/marketing/imports/{import_id}/progress", response_class=HTMLResponse)
async def lead_import_progress(request: Request, import_id: str) -> Response:
    """The progress part of the import page alone: static/marketing.js swaps it in every second."""
    session = ctx(request).require(request)
    found = await _lead_import(request, session, import_id)
    return ctx(request).render(
        request, "marketing_import_progress.html", session, imp=found, progress=import_progress(found)
    )


# ------------------------------------------------------------------ campaigns


@router.get("/marketing/campaigns", response_class=HTMLResponse)
async def campaigns(request: Request, source: str = "", page_token: str = "") -> Response:
    session = ctx(request).require(request)
    sources = (await api(request).call("listSources", session.token)).body["sources"]
    found = (
        await api(request).call(
            "listCampaigns", session.token, query={"source": source, "page_size": 50, "page_token": page_token}
        )
    ).body
    return ctx(request).render(
        request,
        "marketing_campaigns.html",
        session,
        campaigns=found,
        sources=sources,
        source=source,
        spent={c["id"]: budget_spent(c) for c in found["campaigns"]},
        can_edit=edits_campaigns(session),
    )


def budget_spent(campaign: dict[str, Any]) -> float | None:
    """Cost over budget (0.5 = half spent), when both are given in one currency and the budget is above 0."""
    budget, cost = campaign.get("budget"), campaign.get("actual_cost")
    if not budget or not cost or budget.get("currency_code") != cost.get("currency_code"):
        return None
    if int(budget.get("amount_minor", 0)) <= 0:
        return None
    return int(cost.get("amount_minor", 0)) / int(budget["amount_minor"])


def edits_campaigns(session: Session) -> bool:
    """create_campaign and update_campaign are admins' and marketing's (managers only read)."""
    return session.has_any("admin", "marketing")


def _money_fields(values: dict[str, Any], typed: dict[str, str], locale: str) -> dict[str, dict[str, str]]:
    """Each money field's amount text and currency for the form: what was typed, else the record's."""
    default = "IRR" if locale == "fa" else "ILS"
    shown = {}
    for name in CAMPAIGN_MONEY:
        money = values.get(name) or {}
        text = typed.get(name, money_text(money) if money else "")
        shown[name] = {"amount": text, "currency": str(money.get("currency_code") or default)}
    return shown


async def campaign_form_page(
    request: Request, session: Session, campaign: dict[str, Any] | None, **extra: Any
) -> HTMLResponse:
    blank = {"name": "", "starts_on": None, "ends_on": None, "budget": None, "actual_cost": None}
    values = extra.get("values") or (campaign_values(campaign) if campaign else blank)
    sources = [] if campaign else (await api(request).call("listSources", session.token)).body["sources"]
    locale = ctx(request).locale_of(request)
    if extra.get("currencies"):
        money = {n: {"amount": extra["typed"][n], "currency": extra["currencies"][n]} for n in CAMPAIGN_MONEY}
    else:
        money = _money_fields(values, extra.get("typed", {}), locale)
    return ctx(request).render(
        request,
        "marketing_campaign_form.html",
        session,
        campaign=campaign,
        values=values,
        source=extra.get("source", ""),
        sources=sources,
        money=money,
        currencies=CURRENCIES,
        **form_state(campaign, campaign_values(campaign) if campaign else None, extra),
    )


def _campaign_refusal(form: Any, values: dict[str, Any], typed: dict[str, str]) -> dict[str, Any]:
    """The form's own input again, for a re-render after a refusal."""
    currencies = {name: str(form.get(f"{name}_currency", "")) for name in CAMPAIGN_MONEY}
    return {"values": values, "typed": typed, "currencies": currencies, "original": str(form.get("original", ""))}


@router.get("/marketing/campaigns/new", response_class=HTMLResponse)
async def new_campaign(request: Request, source: str = "") -> Response:
    return await campaign_form_page(request, ctx(request).require(request), None, source=source)


@router.post("/marketing/campaigns/new")
async def create_campaign(request: Request) -> Response:
    session, form = await ctx(request).signed_form(request)
    values, typed, problems = campaign_input(form)
    source = str(form.get("source", ""))
    t = Translator(ctx(request).locale_of(request))
    if problems:
        sent: Answer | Refusal = Refusal({name: t(key) for name, key in problems.items()})
    else:
        call = api(request).call("createCampaign", session.token, body={"source": source, **values})
        sent = await answer_or_refusal(call, CAMPAIGN_FIELDS, t, CAMPAIGN_REFUSALS)
    if isinstance(sent, Refusal):
        kept = _campaign_refusal(form, values, typed)
        return await campaign_form_page(request, session, None, source=source, **sent.page(), **kept)
    return RedirectResponse(f"/marketing/campaigns#campaign-{quote(sent.body['id'])}", status_code=303)


@router.get("/marketing/campaigns/{campaign_id}", response_class=HTMLResponse)
async def campaign(request: Request, campaign_id: str) -> Response:
    session = ctx(request).require(request)
    found = (await api(request).call("getCampaign", session.token, path={"campaign_id": campaign_id})).body
    report = (await api(request).call("getCampaignReport", session.token, query={"source": found["source"]})).body
    row = next((r for r in report["rows"] if r["campaign_id"] == found["id"]), None)
    return ctx(request).render(
        request,
        "marketing_campaign.html",
        session,
        campaign=found,
        row=row,
        spent=budget_spent(found),
        can_edit=edits_campaigns(session),
    )


async def _campaign(request: Request, session: Session, campaign_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (
        await api(request).call("getCampaign", session.token, path={"campaign_id": campaign_id})
    ).body
    return found


@router.get("/marketing/campaigns/{campaign_id}/edit", response_class=HTMLResponse)
async def edit_campaign(request: Request, campaign_id: str) -> Response:
    session = ctx(request).require(request)
    return await campaign_form_page(request, session, await _campaign(request, session, campaign_id))


@router.post("/marketing/campaigns/{campaign_id}/edit")
async def update_campaign(request: Request, campaign_id: str) -> Response:
    """Sends only the fields changed since the form was read. Campaigns carry no ETag, so that is
    what keeps two people's edits of different fields from overwriting each other."""
    session, form = await ctx(request).signed_form(request)
    values, typed, problems = campaign_input(form)
    t = Translator(ctx(request).locale_of(request))
    body = changed_fields(values, form_original(form))
    sent: Answer | Refusal | None = None
    if problems:
        sent = Refusal({name: t(key) for name, key in problems.items()})
    elif body:
        call = api(request).call("updateCampaign", session.token, path={"campaign_id": campaign_id}, body=body)
        sent = await answer_or_refusal(call, CAMPAIGN_FIELDS, t, CAMPAIGN_REFUSALS)
    if not isinstance(sent, Refusal):
        return RedirectResponse(f"/marketing/campaigns#campaign-{quote(campaign_id)}", status_code=303)
    found = await _campaign(request, session, campaign_id)
    kept = _campaign_refusal(form, values, typed)
    return await campaign_form_page(request, session, found, **sent.page(), **kept)


# ------------------------------------------------------------------ reports


@router.get("/marketing/reports", response_class=HTMLResponse)
async def reports(request: Request, source: str = "") -> Response:
    session = ctx(request).require(request)
    # The period's days, picked in the Solar Hijri calendar in Persian (templates/_date.html); a
    # day that does not exist is left out (the default period), as an empty field is.
    start, end = (picked_date(request.query_params, name)[0] for name in ("start", "end"))
    t = Translator(ctx(request).locale_of(request))
    bounds = period(start, end, ZONES[t.locale])
    by_source = (await api(request).call("getSourceReport", session.token, query=bounds)).body["rows"]
    by_campaign = (
        await api(request).call("getCampaignReport", session.token, query={**bounds, "source": source})
    ).body["rows"]
    sources = (await api(request).call("listSources", session.token)).body["sources"]
    names = {s["code"]: s["display_name"] for s in sources}
    models = chosen_models(request.query_params.getlist("model"))
    by_attribution = (
        await api(request).call(
            "getAttributionReport", session.token, query={**bounds, "dimension": "source", "models": models}
        )
    ).body
    rtl = t.dir == "rtl"
    source_chart = bar_chart(
        [(names.get(r["source"], r["source"]), float(r["leads"]), t.number(r["leads"])) for r in by_source], rtl=rtl
    )
    currency = main_currency([r.get("cost") for r in by_campaign])
    costly = [r for r in by_campaign if r.get("cost") and r["cost"]["currency_code"] == currency]
    campaign_chart = bar_chart(
        [(r["name"], float(r["cost"]["amount_minor"]), t.money(r["cost"])) for r in costly], rtl=rtl
    )
    return ctx(request).render(
        request,
        "marketing_reports.html",
        session,
        by_source=by_source,
        by_campaign=by_campaign,
        names=names,
        sources=sources,
        source_chart=source_chart,
        campaign_chart=campaign_chart,
        start=start,
        end=end,
        source=source,
        attribution=by_attribution,
        models=models,
        all_models=ATTRIBUTION_MODELS,
    )


# The attribution models a report compares (the gateway's getAttributionReport), two at a time here.
ATTRIBUTION_MODELS = ("first", "last", "linear", "u_shaped", "w_shaped", "full_path", "time_decay", "markov")
DEFAULT_MODELS = ("first", "linear")


def chosen_models(asked: list[str]) -> list[str]:
    """The two models to compare: those asked that exist (each once), else the defaults."""
    known = [m for m in dict.fromkeys(asked) if m in ATTRIBUTION_MODELS][:2]
    return known if len(known) == 2 else list(DEFAULT_MODELS)


# ------------------------------------------------------------------ web-to-lead form keys


def _public_gateway_url(request: Request) -> str:
    """Where a visitor's browser reaches the gateway (`public_gateway_url`; by default the browser's
    address of the issuer, which is the gateway in development)."""
    settings = ctx(request).settings
    return settings.public_gateway_url or settings.oidc_browser_issuer_url


def _snippet(request: Request, key: str) -> str:
    t = Translator(ctx(request).locale_of(request))
    labels = {
        "full_name": t("mkt_form_full_name"),
        "phone": t("phone"),
        "email": t("email"),
        "send": t("mkt_form_send"),
    }
    return web_form_snippet(_public_gateway_url(request), key, t.locale, labels)


async def web_forms_page(request: Request, session: Session, **extra: Any) -> HTMLResponse:
    include_revoked = bool(extra.get("include_revoked"))
    keys = (
        await api(request).call(
            "listWebFormKeys", session.token, query={"include_revoked": include_revoked, "page_size": LIST_SIZE}
        )
    ).body["web_form_keys"]
    sources, campaigns = await _sources_and_campaigns(request, session)
    snippets = {k["id"]: _snippet(request, f"{k['secret_prefix']}…") for k in keys if not k.get("revoke_time")}
    return ctx(request).render(
        request,
        "marketing_web_forms.html",
        session,
        keys=keys,
        snippets=snippets,
        sources=sources,
        campaigns=campaigns,
        campaign_names={c["id"]: c["name"] for c in campaigns},
        include_revoked=include_revoked,
        created=extra.get("created"),
        form=extra.get("form", {}),
        errors=extra.get("errors", {}),
        status_code=extra.get("status_code", 200),
    )


@router.get("/marketing/web-forms", response_class=HTMLResponse)
async def web_forms(request: Request, include_revoked: bool = False) -> Response:
    return await web_forms_page(request, ctx(request).require(request), include_revoked=include_revoked)


@router.post("/marketing/web-forms")
async def create_web_form_key(request: Request) -> Response:
    """Answers with the page itself, not a redirect: the new key is shown this once and must not
    travel in a URL or a cookie (the page is no-store like every console page)."""
    session, form = await ctx(request).signed_form(request)
    body = {k: str(form.get(k, "")).strip() for k in ("display_name", "source", "campaign")}
    try:
        answer = (await api(request).call("createWebFormKey", session.token, body=body)).body
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        errors = exc.field_errors or {"": str(exc.problem.get("detail", ""))}
        return await web_forms_page(request, session, form=body, errors=errors, status_code=exc.status)
    created = {"key": answer["web_form_key"], "snippet": _snippet(request, answer["secret"])}
    return await web_forms_page(request, session, created=created, status_code=201)


@router.post("/marketing/web-forms/{key_id}/revoke")
async def revoke_web_form_key(request: Request, key_id: str) -> Response:
    session, _form = await ctx(request).signed_form(request)
    await api(request).call("revokeWebFormKey", session.token, path={"key_id": key_id})
    return RedirectResponse("/marketing/web-forms", status_code=303)
