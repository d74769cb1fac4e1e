"""The sales manager's screens: SLA breaches, the team's work lists and the unassigned queue,
possible-duplicate review with a side-by-side merge, targets against actual with a chart, and the
routing rules (an admin edits them; a manager reads them, as the gateway allows).

The manager's team is not in the session (the token names it, the console does not keep a copy):
pages ask the gateway's /me, and send a ``team_id`` filter only when the user picked one — the
gateway holds a manager to their own team whatever the console sends.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from crm_console.api import ApiError
from crm_console.i18n import ZONES, words
from crm_console.session import Session
from crm_console.web import PAGE_SIZE, api, ctx, menu_item
from crm_console.words_manager import WORDS

router = APIRouter()
MANAGERS = ("sales_manager", "admin")
menu_item("mgr_breaches", "/manager/breaches", *MANAGERS)
menu_item("mgr_team", "/manager/team", *MANAGERS)
menu_item("mgr_duplicates", "/manager/duplicates", *MANAGERS)
menu_item("mgr_targets", "/manager/targets", *MANAGERS)
menu_item("mgr_rules", "/manager/routing-rules", *MANAGERS)

words(WORDS)

# ------------------------------------------------------------------ pure helpers (no I/O)

CHART_WIDTH = 640
LABEL_WIDTH = 180
ROW_HEIGHT = 56
BAR_HEIGHT = 18
# Over-achievers are drawn up to twice the target, so one runaway row does not flatten the rest.
CHART_CAP_PERCENT = 200.0


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    percent: float


@dataclass(frozen=True)
class ChartRow:
    label: str
    label_x: float
    label_y: float
    target: Bar
    actual: Bar
    value_x: float  # where the achieved percentage is written: just past the actual bar's end


def target_chart(rows: list[dict[str, Any]], labels: list[str], rtl: bool) -> tuple[list[ChartRow], int, float, float]:
    """Bars of target (100%) and actual (achieved %) per report row, on one percent scale so money
    and counts share a chart. In right-to-left the bars grow from the right edge (the inline start).
    Returns the rows, the chart height, and the x of the 0% and 100% axis lines."""
    top = max([100.0, *(min(float(r.get("achieved_percent") or 0), CHART_CAP_PERCENT) for r in rows)])
    span = CHART_WIDTH - LABEL_WIDTH - 16

    def bar(percent: float, y: float) -> Bar:
        width = span * max(min(percent, CHART_CAP_PERCENT), 0.0) / top
        x = CHART_WIDTH - LABEL_WIDTH - width if rtl else LABEL_WIDTH
        return Bar(round(x, 1), y, round(width, 1), percent)

    drawn = []
    for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
        y = 8 + i * ROW_HEIGHT
        actual = bar(float(row.get("achieved_percent") or 0), y + BAR_HEIGHT + 4)
        drawn.append(
            ChartRow(
                label=label,
                label_x=CHART_WIDTH - 8 if rtl else 8,
                label_y=y + BAR_HEIGHT,
                target=bar(100.0, y),
                actual=actual,
                value_x=round(actual.x - 4 if rtl else actual.x + actual.width + 4, 1),
            )
        )
    zero = CHART_WIDTH - LABEL_WIDTH if rtl else LABEL_WIDTH
    hundred = zero - span * 100 / top if rtl else zero + span * 100 / top
    return drawn, 16 + len(rows) * ROW_HEIGHT, round(zero, 1), round(hundred, 1)


def open_work(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A rep's leads still waiting for an answer, the least time left first (overdue on top);
    leads without a clock after them. Answered and converted ones are not the manager's worry."""
    waiting = [i for i in items if not i["responded"] and i["lead"].get("status") != "converted"]
    return sorted(waiting, key=lambda i: (not i["has_deadline"], i["seconds_left"]))


_RULE_FIELD = re.compile(r"^rules\[(\d+)\]\.(\w+)$")
LIST_FIELDS = ("sources", "campaign_ids", "product_lines", "territories")


def _items(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,،\n]", text) if part.strip()]


def rules_from_form(form: Any) -> list[dict[str, Any]]:
    """The PUT body's rules from the editor's fields (``rules[i].name`` ...), in the form's order.
    A rule marked for removal is left out; the empty "new rule" block is left out while untouched.
    Numbers that do not parse are sent as typed, so the gateway's 422 names the field."""
    found: dict[int, dict[str, Any]] = {}
    for key in form.keys():
        match = _RULE_FIELD.match(key)
        if match:
            index, name = int(match.group(1)), match.group(2)
            found.setdefault(index, {})[name] = form.getlist(key) if name == "languages" else str(form.get(key))
    rules = []
    for index in sorted(found):
        raw = found[index]
        if raw.get("remove") or (raw.get("new") and not raw.get("name")):
            continue
        rule: dict[str, Any] = {
            "id": raw.get("id", ""),
            "name": raw.get("name", ""),
            "priority": _number(raw.get("priority", "")),
            "strategy": raw.get("strategy") or "round_robin",
            "team_id": raw.get("team_id", "").strip(),
            "rep_id": raw.get("rep_id", "").strip(),
            "breach_action": raw.get("breach_action") or "escalate",
            "languages": list(raw.get("languages", [])),
            "sla_seconds": _number(raw["sla_seconds"]) if raw.get("sla_seconds", "").strip() else None,
        }
        for name in LIST_FIELDS:
            rule[name] = _items(raw.get(name, ""))
        rules.append(rule)
    return rules


def _number(text: str) -> int | str:
    try:
        return int(text.strip())
    except ValueError:
        return text


def today_in(locale: str) -> date:
    return datetime.now(UTC).astimezone(ZONES.get(locale, ZONES["he"])).date()


# ------------------------------------------------------------------ gateway reads


async def me(request: Request, session: Session) -> dict[str, Any]:
    answer: dict[str, Any] = (await api(request).call("getMe", session.token)).body
    return answer


async def teams(request: Request, session: Session) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await api(request).call("listTeams", session.token, query={"page_size": 100})).body[
        "teams"
    ]
    return found


async def lead_or_none(request: Request, session: Session, lead_id: str) -> dict[str, Any] | None:
    """A lead, or None when the caller may no longer see it (merged away, moved to another team)."""
    try:
        found: dict[str, Any] = (await api(request).call("getLead", session.token, path={"lead_id": lead_id})).body
    except ApiError as exc:
        if exc.status not in (403, 404):
            raise
        return None
    return found


async def rep_names(request: Request, session: Session, team_id: str) -> dict[str, str]:
    reps = (await api(request).call("listReps", session.token, query={"team_id": team_id})).body["reps"]
    return {r["id"]: r["name"] for r in reps}


# ------------------------------------------------------------------ SLA breaches


@router.get("/manager/breaches", response_class=HTMLResponse)
async def breaches(request: Request, team_id: str = "", page_token: str = "") -> Response:
    session = ctx(request).require(request)
    found = (
        await api(request).call(
            "listSlaBreaches",
            session.token,
            query={"team_id": team_id, "page_size": PAGE_SIZE, "page_token": page_token},
        )
    ).body
    who, team_list = await asyncio.gather(me(request, session), teams(request, session))
    items = found["sla_breaches"]
    leads = await asyncio.gather(*(lead_or_none(request, session, b["lead_id"]) for b in items))
    names = await rep_names(request, session, team_id or who.get("team_id", ""))
    rows = [
        {"breach": b, "lead": lead, "rep_name": names.get(b["rep_id"], "")}
        for b, lead in zip(items, leads, strict=True)
    ]
    return ctx(request).render(
        request,
        "manager_breaches.html",
        session,
        rows=rows,
        teams=team_list,
        team_id=team_id,
        my_team=who.get("team_id", ""),
        empty_label="mgr_all_teams",
        next_page_token=found["next_page_token"],
    )


# ------------------------------------------------------------------ team work lists and the queue


@router.get("/manager/team", response_class=HTMLResponse)
async def team_work(request: Request, team_id: str = "") -> Response:
    session = ctx(request).require(request)
    who, team_list = await asyncio.gather(me(request, session), teams(request, session))
    team = team_id or who.get("team_id", "")
    reps: list[dict[str, Any]] = []
    lists: list[list[dict[str, Any]]] = []
    if team:
        reps = (await api(request).call("listReps", session.token, query={"team_id": team})).body["reps"]
        answers = await asyncio.gather(
            *(
                api(request).call("listMyLeads", session.token, query={"rep_id": r["id"], "page_size": 100})
                for r in reps
            )
        )
        lists = [open_work(a.body["items"]) for a in answers]
    queue = (
        await api(request).call("listLeadQueue", session.token, query={"team_id": team_id, "page_size": PAGE_SIZE})
    ).body["leads"]
    return ctx(request).render(
        request,
        "manager_team.html",
        session,
        team=team,
        team_id=team_id,
        my_team=who.get("team_id", ""),
        empty_label="mgr_choose_team",
        teams=team_list,
        reps=list(zip(reps, lists, strict=True)),
        queue=queue,
    )


# ------------------------------------------------------------------ possible duplicates


@router.get("/manager/duplicates", response_class=HTMLResponse)
async def duplicates(request: Request, page_token: str = "", notice: str = "") -> Response:
    session = ctx(request).require(request)
    found = (
        await api(request).call(
            "listPossibleDuplicates",
            session.token,
            query={"status": "open", "page_size": PAGE_SIZE, "page_token": page_token},
        )
    ).body
    return ctx(request).render(
        request,
        "manager_duplicates.html",
        session,
        pairs=found["possible_duplicates"],
        next_page_token=found["next_page_token"],
        notice=notice if notice in ("mgr_merged", "mgr_dismissed") else "",
    )


async def pair_page(request: Request, session: Session, pair_id: str, lead_id: str, **extra: Any) -> HTMLResponse:
    """One pair side by side. There is no "get a pair" call: the pair is found among the open pairs
    of one of its leads (the link carries that lead's id)."""
    listed = (
        await api(request).call(
            "listPossibleDuplicates", session.token, query={"lead_id": lead_id, "status": "open", "page_size": 100}
        )
    ).body["possible_duplicates"]
    pair = next((p for p in listed if p["id"] == pair_id), None)
    if pair is None:
        raise ApiError(404, {"title": "Not Found", "detail": "no open possible duplicate with that id"})
    ids = [(pair.get("lead") or {}).get("id", ""), (pair.get("other_lead") or {}).get("id", "")]
    leads = await asyncio.gather(*(lead_or_none(request, session, i) for i in ids if i))
    sides = [lead for lead in leads if lead]
    return ctx(request).render(
        request,
        "manager_pair.html",
        session,
        pair=pair,
        sides=sides,
        lead_id=lead_id,
        refusal=extra.get("refusal", ""),
        status_code=extra.get("status_code", 200),
    )


@router.get("/manager/duplicates/{pair_id}", response_class=HTMLResponse)
async def pair(request: Request, pair_id: str, lead_id: str = "") -> Response:
    return await pair_page(request, ctx(request).require(request), pair_id, lead_id)


async def _pair_action(request: Request, pair_id: str, action: str) -> Response:
    session, form = await ctx(request).signed_form(request)
    lead_id = str(form.get("lead_id", ""))
    try:
        if action == "merge":
            await api(request).call(
                "mergeLeads",
                session.token,
                path={"lead_id": str(form.get("keep", ""))},
                body={"duplicate_lead_id": str(form.get("duplicate", ""))},
            )
        else:
            await api(request).call("dismissPossibleDuplicate", session.token, path={"possible_duplicate_id": pair_id})
    except ApiError as exc:
        if exc.status not in (403, 404, 409, 412, 422):
            raise
        refusal = str(exc.problem.get("detail") or exc.problem.get("title") or exc.status)
        try:
            return await pair_page(request, session, pair_id, lead_id, refusal=refusal, status_code=exc.status)
        except ApiError:
            # The pair itself is gone (resolved by someone else): the list says so with the reason.
            return ctx(request).render(
                request, "manager_duplicates.html", session, pairs=[], next_page_token="", notice="",
                refusal=refusal, status_code=exc.status,
            )  # fmt: skip
    done = "mgr_merged" if action == "merge" else "mgr_dismissed"
    return RedirectResponse(f"/manager/duplicates?notice={done}", status_code=303)


@router.post("/manager/duplicates/{pair_id}/merge")
async def merge(request: Request, pair_id: str) -> Response:
    return await _pair_action(request, pair_id, "merge")


@router.post("/manager/duplicates/{pair_id}/dismiss")
async def dismiss(request: Request, pair_id: str) -> Response:
    return await _pair_action(request, pair_id, "dismiss")


# ------------------------------------------------------------------ targets vs actual


@router.get("/manager/targets", response_class=HTMLResponse)
async def targets(request: Request) -> Response:
    session = ctx(request).require(request)
    locale = ctx(request).locale_of(request)
    report = (
        await api(request).call(
            "getTargetReport",
            session.token,
            query={"period_kind": "month", "date": today_in(locale).isoformat()},
        )
    ).body
    who, team_list = await asyncio.gather(me(request, session), teams(request, session))
    names = await rep_names(request, session, who.get("team_id", ""))
    names.update({team["id"]: team["name"] for team in team_list})
    rows = report["rows"]
    labels = [names.get(r["target"]["subject_id"], r["target"]["subject_id"]) for r in rows]
    chart, height, zero_x, hundred_x = target_chart(rows, labels, rtl=locale in ("he", "fa"))
    return ctx(request).render(
        request,
        "manager_targets.html",
        session,
        report=report,
        rows=list(zip(rows, labels, strict=True)),
        chart=chart,
        chart_width=CHART_WIDTH,
        chart_height=height,
        zero_x=zero_x,
        hundred_x=hundred_x,
        bar_height=BAR_HEIGHT,
    )


# ------------------------------------------------------------------ routing rules


async def rules_page(request: Request, session: Session, **extra: Any) -> HTMLResponse:
    answer = await api(request).call("listRoutingRules", session.token)
    rules = extra.get("rules", answer.body["rules"])
    return ctx(request).render(
        request,
        "manager_rules.html",
        session,
        rules=rules,
        version=answer.body["version"],
        # A refused edit keeps the version it was made on, so saving it again cannot overwrite a newer set.
        etag=extra.get("etag") or answer.headers.get("etag", ""),
        editable="admin" in session.roles,
        errors=extra.get("errors", {}),
        notice=extra.get("notice", ""),
        status_code=extra.get("status_code", 200),
    )


@router.get("/manager/routing-rules", response_class=HTMLResponse)
async def routing_rules(request: Request, notice: str = "") -> Response:
    return await rules_page(request, ctx(request).require(request), notice="mgr_saved" if notice == "mgr_saved" else "")


@router.post("/manager/routing-rules")
async def save_routing_rules(request: Request) -> Response:
    session, form = await ctx(request).signed_form(request)
    rules = rules_from_form(form)
    etag = str(form.get("etag", ""))
    try:
        await api(request).call(
            "replaceRoutingRules", session.token, headers={"If-Match": etag} if etag else {}, body={"rules": rules}
        )
    except ApiError as exc:
        if exc.status == 412:  # changed meanwhile: show the current rules, not the stale edit
            return await rules_page(request, session, notice="conflict", status_code=412)
        if exc.status not in (409, 422):
            raise
        # Shown again as sent, numbered as the body was, so ``rules[1].team_id`` lands on its field.
        errors = exc.field_errors or {"": str(exc.problem.get("detail") or exc.problem.get("title") or exc.status)}
        return await rules_page(request, session, rules=rules, errors=errors, etag=etag, status_code=exc.status)
    return RedirectResponse(f"/manager/routing-rules?notice={quote('mgr_saved')}", status_code=303)
