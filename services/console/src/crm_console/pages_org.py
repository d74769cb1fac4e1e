"""Teams and reps: the list of teams with their reps, and the forms that create and change them.

Admins create and change teams and reps; a manager reads their team and changes their own reps'
availability and capacity (the gateway's update_rep policy), and the forms offer each exactly the
fields the gateway lets them send. Users themselves are not made here: they come from the identity
provider, whose tokens name their team_id and rep_id. The form plumbing shared with the other
areas' forms (changed fields only, refusals by field) is crm_console.forms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from crm_console.api import Answer, ApiError
from crm_console.forms import Refusal, answer_or_refusal, ascii_digits, changed_fields, form_original, form_state
from crm_console.i18n import Translator, words
from crm_console.session import Session
from crm_console.web import api, ctx, menu_item, next_href

router = APIRouter()
# list_teams is admins' and managers' (list_reps every sales role); creating teams and reps admins'.
menu_item("teams_reps", "/admin/teams", "admin", "sales_manager")

# The gateway's working-hours days, in the order of the Israeli week (Sunday first).
WEEK = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# Time zones offered for a rep (empty: the company's default, Asia/Jerusalem); a rep's other zone
# is offered too, so an edit never loses it.
REP_ZONES = ("", "Asia/Jerusalem", "Asia/Tehran")
TEAM_FIELDS = ("name", "manager_id", "active")
REP_WHO_FIELDS = ("name", "team_id", "active", "territories", "product_lines")  # an admin's (ADMIN_FIELDS)
REP_AVAILABILITY_FIELDS = ("away", "capacity", "time_zone", "working_hours")
_LIST_SEPARATORS = re.compile(r"[,،\n;]")

words(
    {
        "teams_reps": {"he": "צוותים ונציגים", "fa": "تیم‌ها و کارشناسان", "en": "Teams and reps"},
        "team": {"he": "צוות", "fa": "تیم", "en": "Team"},
        "team_manager": {"he": "מנהל הצוות", "fa": "مدیر تیم", "en": "Manager"},
        "team_active_reps": {"he": "נציגים פעילים", "fa": "کارشناسان فعال", "en": "Active reps"},
        "no_team": {"he": "ללא צוות", "fa": "بدون تیم", "en": "No team"},
        "state_active": {"he": "פעיל", "fa": "فعال", "en": "Active"},
        "state_inactive": {"he": "לא פעיל", "fa": "غیرفعال", "en": "Inactive"},
        "state_away": {"he": "לא זמין (בחופש)", "fa": "غایب", "en": "Away"},
        "rep_available": {"he": "זמין", "fa": "در دسترس", "en": "Available"},
        "availability": {"he": "זמינות", "fa": "در دسترس بودن", "en": "Availability"},
        "territories": {"he": "אזורים", "fa": "مناطق", "en": "Territories"},
        "product_lines": {"he": "קווי מוצרים", "fa": "خطوط محصول", "en": "Product lines"},
        "capacity": {"he": "קיבולת", "fa": "ظرفیت", "en": "Capacity"},
        "capacity_unlimited": {"he": "ללא הגבלה", "fa": "نامحدود", "en": "Unlimited"},
        "open_leads": {"he": "לידים פתוחים", "fa": "سرنخ‌های باز", "en": "Open leads"},
        "reps_none": {"he": "אין נציגים.", "fa": "کارشناسی نیست.", "en": "No reps."},
        "new_team": {"he": "צוות חדש", "fa": "تیم تازه", "en": "New team"},
        "new_rep": {"he": "נציג חדש", "fa": "کارشناس تازه", "en": "New rep"},
        "edit_team": {"he": "עריכת צוות", "fa": "ویرایش تیم", "en": "Edit team"},
        "edit_rep": {"he": "עריכת נציג", "fa": "ویرایش کارشناس", "en": "Edit rep"},
        "team_name": {"he": "שם הצוות", "fa": "نام تیم", "en": "Team name"},
        "rep_name": {"he": "שם הנציג", "fa": "نام کارشناس", "en": "Rep's name"},
        "directory_id": {"he": "מזהה (לא חובה)", "fa": "شناسه (اختیاری)", "en": "Id (optional)"},
        "team_id_hint": {
            "he": "ה-team_id שבאסימון של מנהל הצוות. אותיות לטיניות, ספרות ו-_.:- בלבד; ריק: נוצר אוטומטית.",
            "fa": "همان team_id در توکن مدیر تیم. فقط حروف لاتین، رقم و _.:-؛ خالی: خودکار ساخته می‌شود.",
            "en": "The team_id in its manager's token. Latin letters, digits and _.:- only; empty: generated.",
        },
        "rep_id_hint": {
            "he": "ה-rep_id שבאסימון של הנציג. אותיות לטיניות, ספרות ו-_.:- בלבד; ריק: נוצר אוטומטית.",
            "fa": "همان rep_id در توکن کارشناس. فقط حروف لاتین، رقم و _.:-؛ خالی: خودکار ساخته می‌شود.",
            "en": "The rep_id in the rep's token. Latin letters, digits and _.:- only; empty: generated.",
        },
        "manager_id_hint": {
            "he": "מזהה המשתמש של המנהל אצל ספק הזהויות; אליו מוסלמות חריגות SLA. ריק: אף אחד.",
            "fa": "شناسه‌ی کاربری مدیر نزد سرویس هویت؛ تخطی‌های SLA به او ارجاع می‌شود. خالی: هیچ‌کس.",
            "en": "The manager's user id at the identity provider; SLA breaches go to them. Empty: nobody.",
        },
        "team_active_hint": {
            "he": "צוות לא פעיל לא מקבל לידים; אי אפשר להשבית צוות שיש בו נציגים פעילים.",
            "fa": "تیم غیرفعال سرنخ نمی‌گیرد؛ تیمی که کارشناس فعال دارد غیرفعال نمی‌شود.",
            "en": "An inactive team gets no leads; a team with active reps cannot be deactivated.",
        },
        "rep_active_hint": {
            "he": "נציג לא פעיל לא מקבל לידים חדשים ושומר על הלידים שלו.",
            "fa": "کارشناس غیرفعال سرنخ تازه نمی‌گیرد و سرنخ‌هایش می‌مانند.",
            "en": "An inactive rep gets no new leads and keeps theirs.",
        },
        "rep_away": {"he": "בחופש (לא זמין זמנית)", "fa": "غایب (موقتاً در دسترس نیست)", "en": "Away for now"},
        "capacity_hint": {
            "he": "מספר הלידים הפתוחים המרבי; ריק: ללא הגבלה.",
            "fa": "بیشترین شمار سرنخ‌های باز؛ خالی: نامحدود.",
            "en": "The most open leads at once; empty: no limit.",
        },
        "time_zone": {"he": "אזור זמן", "fa": "منطقه‌ی زمانی", "en": "Time zone"},
        "tz_default": {"he": "ברירת המחדל (ירושלים)", "fa": "پیش‌فرض (اورشلیم)", "en": "Default (Jerusalem)"},
        "tz_Asia/Jerusalem": {"he": "ישראל (ירושלים)", "fa": "اسرائیل (اورشلیم)", "en": "Israel (Jerusalem)"},
        "tz_Asia/Tehran": {"he": "איראן (טהרן)", "fa": "ایران (تهران)", "en": "Iran (Tehran)"},
        "working_hours": {"he": "שעות עבודה", "fa": "ساعت‌های کاری", "en": "Working hours"},
        "working_hours_hint": {
            "he": "שורה לכל משמרת; שורה ריקה לא נשמרת. בלי שעות בכלל: תמיד בתורנות. סיום 00:00 הוא סוף היום.",
            "fa": "هر نوبت یک سطر؛ سطر خالی ذخیره نمی‌شود. بی ساعت: همیشه در نوبت. پایان ۰۰:۰۰ یعنی پایان روز.",
            "en": "One row per shift; empty rows are dropped. No hours: always on duty. An end of 00:00 is midnight.",
        },
        "hours_from": {"he": "משעה", "fa": "از ساعت", "en": "From"},
        "hours_to": {"he": "עד שעה", "fa": "تا ساعت", "en": "To"},
        "hours_incomplete": {
            "he": "בכל משמרת צריך שעת התחלה וגם שעת סיום.",
            "fa": "هر نوبت هم ساعت آغاز می‌خواهد هم ساعت پایان.",
            "en": "Each shift needs both a start and an end.",
        },
        "day_sun": {"he": "ראשון", "fa": "یکشنبه", "en": "Sunday"},
        "day_mon": {"he": "שני", "fa": "دوشنبه", "en": "Monday"},
        "day_tue": {"he": "שלישי", "fa": "سه‌شنبه", "en": "Tuesday"},
        "day_wed": {"he": "רביעי", "fa": "چهارشنبه", "en": "Wednesday"},
        "day_thu": {"he": "חמישי", "fa": "پنجشنبه", "en": "Thursday"},
        "day_fri": {"he": "שישי", "fa": "جمعه", "en": "Friday"},
        "day_sat": {"he": "שבת", "fa": "شنبه", "en": "Saturday"},
        "codes_hint": {
            "he": "מופרדים בפסיקים; ריק: הכול.",
            "fa": "با ویرگول جدا کنید؛ خالی: همه.",
            "en": "Separated by commas; empty: any.",
        },
        "not_a_number": {"he": "יש להזין מספר שלם.", "fa": "یک عدد صحیح وارد کنید.", "en": "Enter a whole number."},
        "rep_edit_availability_only": {
            "he": "כמנהל אפשר לשנות כאן את הזמינות והקיבולת; שם, צוות ואזורים משנה מנהל המערכת.",
            "fa": "شما به‌عنوان مدیر در دسترس بودن و ظرفیت را تغییر می‌دهید؛ نام، تیم و مناطق با مدیر سامانه است.",
            "en": "As a manager you change availability and capacity here; name, team and coverage are an admin's.",
        },
        "users_from_idp": {
            "he": "משתמשים ותפקידים מנוהלים אצל ספק הזהויות; כאן מגדירים את הצוותים והנציגים שהם מייצגים.",
            "fa": "کاربران و نقش‌ها در سرویس هویت مدیریت می‌شوند؛ اینجا تیم‌ها و کارشناسان را تعریف می‌کنید.",
            "en": "Users and their roles live at the identity provider; here are the teams and reps they stand for.",
        },
    }
)


# ------------------------------------------------------------------ pure helpers (no I/O)


def reps_by_team(teams: list[dict[str, Any]], reps: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[Any]]]:
    """Each team with its reps (by name), and a last team-less group for reps of no listed team
    (so a rep is never missing from the screen because their team is on another page)."""
    known = {team["id"] for team in teams}
    grouped: list[tuple[dict[str, Any], list[Any]]] = [
        (team, sorted((r for r in reps if r.get("team_id") == team["id"]), key=lambda r: str(r.get("name"))))
        for team in teams
    ]
    stray = sorted((r for r in reps if r.get("team_id") not in known), key=lambda r: str(r.get("name")))
    if stray:
        grouped.append(({"id": "", "name": "", "manager_id": "", "active": True, "active_reps": 0}, stray))
    return grouped


def split_codes(text: str) -> list[str]:
    """A list typed as "תל אביב, חיפה" (commas, the Arabic comma, semicolons or lines): trimmed,
    empty ones dropped, each once in the order typed."""
    return list(dict.fromkeys(part.strip() for part in _LIST_SEPARATORS.split(text) if part.strip()))


def team_values(team: Mapping[str, Any]) -> dict[str, Any]:
    """A team as the edit form's values (also what its PATCH is compared with)."""
    return {
        "name": str(team.get("name", "")),
        "manager_id": str(team.get("manager_id", "")),
        "active": bool(team.get("active")),
    }


def team_input(form: Mapping[str, Any]) -> dict[str, Any]:
    """The team form's values as the gateway's body (a checkbox sends "true" or nothing)."""
    return {
        "name": str(form.get("name", "")).strip(),
        "manager_id": str(form.get("manager_id", "")).strip(),
        "active": form.get("active") == "true",
    }


def _hour_key(span: Mapping[str, str]) -> tuple[int, str, str]:
    day = span.get("day", "")
    return (WEEK.index(day) if day in WEEK else len(WEEK), span.get("start", ""), span.get("end", ""))


def sorted_hours(spans: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Working hours by day of the week, then start: one order for the record and the form, so an
    untouched schedule compares equal."""
    hours = [
        {"day": str(s.get("day", "")), "start": str(s.get("start", "")), "end": str(s.get("end", ""))} for s in spans
    ]
    return sorted(hours, key=_hour_key)


def hours_input(days: list[str], starts: list[str], ends: list[str]) -> tuple[list[dict[str, str]], bool]:
    """The working-hours rows of the form (parallel lists) as spans, and whether a row was half
    filled. A row without times is dropped; an end of 00:00 is the end of the day (the gateway's
    24:00, which a time input cannot show)."""
    spans, incomplete = [], False
    for day, start, end in zip(days, starts, ends, strict=False):
        start, end = ascii_digits(start.strip()), ascii_digits(end.strip())
        if not start and not end:
            continue
        if not start or not end:
            incomplete = True
            continue
        spans.append({"day": day, "start": start, "end": "24:00" if end == "00:00" else end})
    return sorted_hours(spans), incomplete


def hours_rows(spans: list[dict[str, str]]) -> list[dict[str, str]]:
    """The form's rows: every span (24:00 shown as 00:00), then an empty row for each day without
    one and one more, so a split shift can be added without JavaScript."""
    rows = [{**s, "end": "00:00" if s["end"] == "24:00" else s["end"]} for s in spans]
    covered = {s["day"] for s in spans}
    rows += [{"day": day, "start": "", "end": ""} for day in WEEK if day not in covered]
    rows.append({"day": WEEK[0], "start": "", "end": ""})
    return rows


def rep_values(rep: Mapping[str, Any]) -> dict[str, Any]:
    """A rep as the edit form's values (also what its PATCH is compared with)."""
    capacity = rep.get("capacity")
    return {
        "name": str(rep.get("name", "")),
        "team_id": str(rep.get("team_id", "")),
        "active": bool(rep.get("active")),
        "territories": [str(c) for c in rep.get("territories") or []],
        "product_lines": [str(c) for c in rep.get("product_lines") or []],
        "away": bool(rep.get("away")),
        "capacity": int(capacity) if capacity is not None else None,
        "time_zone": str(rep.get("time_zone", "")),
        "working_hours": sorted_hours(rep.get("working_hours") or []),
    }


def rep_input(form: Any, fields: Iterable[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The rep form's values for ``fields`` as the gateway's body, and the fields that do not
    parse (field → message key). A capacity that is not a whole number keeps its text, so the
    form shows what was typed."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name in fields:
        if name in ("active", "away"):
            values[name] = form.get(name) == "true"
        elif name == "capacity":
            text = ascii_digits(str(form.get("capacity", "")).strip())
            try:
                values[name] = int(text) if text else None
            except ValueError:
                values[name], problems[name] = text, "not_a_number"
        elif name in ("territories", "product_lines"):
            values[name] = split_codes(str(form.get(name, "")))
        elif name == "working_hours":
            days, starts, ends = (
                [str(v) for v in form.getlist(key)] for key in ("hours_day", "hours_start", "hours_end")
            )
            values[name], incomplete = hours_input(days, starts, ends)
            if incomplete:
                problems[name] = "hours_incomplete"
        else:
            values[name] = str(form.get(name, "")).strip()
    return values, problems


def rep_fields(session: Session, *, new: bool) -> tuple[str, ...]:
    """What the caller may set on a rep: an admin everything; a manager availability and capacity."""
    if new or session.has_any("admin"):
        return REP_WHO_FIELDS + REP_AVAILABILITY_FIELDS
    return REP_AVAILABILITY_FIELDS


# ------------------------------------------------------------------ the list


@router.get("/admin/teams", response_class=HTMLResponse)
async def teams(request: Request, page_token: str = "") -> Response:
    session = ctx(request).require(request)
    gateway = api(request)
    listed = (
        await gateway.call(
            "listTeams", session.token, query={"show_inactive": True, "page_size": 100, "page_token": page_token}
        )
    ).body
    # One call for every rep the caller may see (the gateway holds a manager to their team), grouped
    # here by team, rather than one call per team.
    reps = (await gateway.call("listReps", session.token)).body["reps"]
    token = listed["next_page_token"]
    return ctx(request).render(
        request,
        "people_teams.html",
        session,
        groups=reps_by_team(listed["teams"], reps),
        next_page=next_href("/admin/teams", {}, token) if token else "",
    )


# ------------------------------------------------------------------ creating and editing teams and reps


async def _teams_to_choose(request: Request, session: Session) -> list[dict[str, Any]]:
    listed = (await api(request).call("listTeams", session.token, query={"show_inactive": True, "page_size": 100})).body
    return list(listed["teams"])


def _translator(request: Request) -> Translator:
    return Translator(ctx(request).locale_of(request))


async def team_form_page(request: Request, session: Session, team: dict[str, Any] | None, **extra: Any) -> HTMLResponse:
    values = extra.get("values") or (team_values(team) if team else {"name": "", "manager_id": "", "active": True})
    return ctx(request).render(
        request,
        "people_team_form.html",
        session,
        team=team,
        values=values,
        **form_state(team, team_values(team) if team else None, extra),
    )


@router.get("/admin/teams/new", response_class=HTMLResponse)
async def new_team(request: Request) -> Response:
    return await team_form_page(request, ctx(request).require(request), None)


@router.post("/admin/teams/new")
async def create_team(request: Request) -> Response:
    session, form = await ctx(request).signed_form(request)
    values, new_id = team_input(form), str(form.get("id", "")).strip()
    call = api(request).call("createTeam", session.token, body={"id": new_id, **values})
    sent = await answer_or_refusal(call, ("id", *TEAM_FIELDS), _translator(request))
    if isinstance(sent, Refusal):
        return await team_form_page(request, session, None, values=values, new_id=new_id, **sent.page())
    return RedirectResponse("/admin/teams", status_code=303)


async def _team(request: Request, session: Session, team_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await api(request).call("getTeam", session.token, path={"team_id": team_id})).body
    return found


@router.get("/admin/teams/{team_id}/edit", response_class=HTMLResponse)
async def edit_team(request: Request, team_id: str) -> Response:
    session = ctx(request).require(request)
    return await team_form_page(request, session, await _team(request, session, team_id))


@router.post("/admin/teams/{team_id}/edit")
async def update_team(request: Request, team_id: str) -> Response:
    """Sends only what changed, with the ETag the form was read with (the gateway requires it):
    a team changed meanwhile is 412 and the form comes back with the user's input and a reload link."""
    session, form = await ctx(request).signed_form(request)
    values, etag = team_input(form), str(form.get("etag", ""))
    body = changed_fields(values, form_original(form))
    if not body:
        return RedirectResponse("/admin/teams", status_code=303)
    headers = {"If-Match": etag or "*"}
    call = api(request).call("updateTeam", session.token, path={"team_id": team_id}, headers=headers, body=body)
    sent = await answer_or_refusal(call, TEAM_FIELDS, _translator(request))
    if isinstance(sent, Refusal):
        # The form comes back as it was sent (its original and ETag too): after a 412 another
        # save is refused again until the user reloads and sees the other change.
        found = await _team(request, session, team_id)
        original = str(form.get("original", ""))
        return await team_form_page(request, session, found, values=values, original=original, etag=etag, **sent.page())
    return RedirectResponse("/admin/teams", status_code=303)


def _zones(current: str) -> tuple[str, ...]:
    return REP_ZONES if current in REP_ZONES else (*REP_ZONES, current)


def blank_rep(team_id: str = "") -> dict[str, Any]:
    """A new rep's form: active, no cap, the company's time zone, always on duty, any coverage."""
    return rep_values({"team_id": team_id, "active": True})


async def rep_form_page(request: Request, session: Session, rep: dict[str, Any] | None, **extra: Any) -> HTMLResponse:
    fields = rep_fields(session, new=rep is None)
    values = extra.get("values") or (rep_values(rep) if rep else blank_rep())
    teams = await _teams_to_choose(request, session) if "team_id" in fields else []
    # New reps join active teams; the rep's own team is offered even when it was deactivated.
    teams = [team for team in teams if team.get("active") or team["id"] == values.get("team_id")]
    return ctx(request).render(
        request,
        "people_rep_form.html",
        session,
        rep=rep,
        fields=fields,
        values=values,
        rows=hours_rows(values.get("working_hours") or []),
        week=WEEK,
        zones=_zones(str(values.get("time_zone", ""))),
        teams=teams,
        **form_state(rep, rep_values(rep) if rep else None, extra),
    )


def _problems(problems: Mapping[str, str], t: Translator) -> dict[str, str]:
    return {name: t(key) for name, key in problems.items()}


@router.get("/admin/reps/new", response_class=HTMLResponse)
async def new_rep(request: Request, team_id: str = "") -> Response:
    return await rep_form_page(request, ctx(request).require(request), None, values=blank_rep(team_id))


@router.post("/admin/reps/new")
async def create_rep(request: Request) -> Response:
    session, form = await ctx(request).signed_form(request, max_fields=400)
    fields = rep_fields(session, new=True)
    values, problems = rep_input(form, fields)
    new_id = str(form.get("id", "")).strip()
    t = _translator(request)
    if problems:
        sent: Answer | Refusal = Refusal(_problems(problems, t))
    else:
        call = api(request).call("createRep", session.token, body={"id": new_id, **values})
        sent = await answer_or_refusal(call, ("id", *fields), t)
    if isinstance(sent, Refusal):
        return await rep_form_page(request, session, None, values=values, new_id=new_id, **sent.page())
    return RedirectResponse("/admin/teams", status_code=303)


async def _rep(request: Request, session: Session, rep_id: str) -> dict[str, Any]:
    """The rep, from the caller's list of reps (the gateway has no single-rep read): an admin finds
    any rep, a manager their team's; anyone else's is 404 like the gateway's."""
    reps = (await api(request).call("listReps", session.token)).body["reps"]
    found = next((rep for rep in reps if rep.get("id") == rep_id), None)
    if found is None:
        raise ApiError(404, {"title": "Not Found", "detail": f"No rep {rep_id}."})
    return dict(found)


@router.get("/admin/reps/{rep_id}/edit", response_class=HTMLResponse)
async def edit_rep(request: Request, rep_id: str) -> Response:
    session = ctx(request).require(request)
    return await rep_form_page(request, session, await _rep(request, session, rep_id))


@router.post("/admin/reps/{rep_id}/edit")
async def update_rep(request: Request, rep_id: str) -> Response:
    """Sends only the changed fields the caller may change, with the ETag read with the rep (a
    rep changed meanwhile is 412: the form comes back with the user's input and a reload link)."""
    session, form = await ctx(request).signed_form(request, max_fields=400)
    fields = rep_fields(session, new=False)
    values, problems = rep_input(form, fields)
    etag, original = str(form.get("etag", "")), str(form.get("original", ""))
    t = _translator(request)
    body = changed_fields(values, form_original(form))
    sent: Answer | Refusal | None = None
    if problems:
        sent = Refusal(_problems(problems, t))
    elif body:
        headers = {"If-Match": etag} if etag else {}
        call = api(request).call("updateRep", session.token, path={"rep_id": rep_id}, headers=headers, body=body)
        sent = await answer_or_refusal(call, fields, t)
    if not isinstance(sent, Refusal):
        return RedirectResponse("/admin/teams", status_code=303)
    found = await _rep(request, session, rep_id)
    return await rep_form_page(request, session, found, values=values, original=original, etag=etag, **sent.page())
