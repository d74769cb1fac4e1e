"""The development issuer's sign-in pages (crm_gateway.platform.dev_oidc): he, fa and en, RTL for
the first two. No I/O.

Plain HTML, no script. The gateway's CSP (`default-src 'none'`) allows no style at all, so these
pages send their own policy (SecurityHeadersMiddleware keeps a CSP a response already has): the
API's, plus the one <style> element by its hash (no 'unsafe-inline') and `form-action` limited to
this page and the client's redirect origin (browsers also check the redirect a form POST answers with).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from html import escape

from fastapi.responses import HTMLResponse

from crm_kit.dev_issuer import DEMO_USERS

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True)
class PageTexts:
    direction: str
    title: str
    intro: str  # {client}: the client id
    warning: str
    sign_in_as: str
    team: str
    error_title: str
    error_intro: str
    roles: dict[str, str]


TEXTS = {
    "he": PageTexts(
        direction="rtl",
        title="כניסת פיתוח",
        intro="בחרו משתמש הדגמה כדי להיכנס אל {client}. אין כאן סיסמה.",
        warning="מנפיק האסימונים של סביבת הפיתוח. לעולם לא בייצור.",
        sign_in_as="כניסה בתור",
        team="צוות",
        error_title="בקשת כניסה שגויה",
        error_intro="האפליקציה ששלחה אתכם לכאן אינה רשומה, או שכתובת החזרה שלה אינה רשומה.",
        roles={
            "admin": "מנהל מערכת",
            "sales_manager": "מנהל מכירות",
            "sales_rep": "נציג מכירות",
            "orders_clerk": "פקיד הזמנות",
            "service_agent": "נציג שירות",
            "marketing": "שיווק",
        },
    ),
    "fa": PageTexts(
        direction="rtl",
        title="ورود توسعه",
        intro="برای ورود به {client} یک کاربر نمایشی را انتخاب کنید. اینجا گذرواژه‌ای در کار نیست.",
        warning="صادرکنندهٔ توکن محیط توسعه. هرگز در محیط عملیاتی.",
        sign_in_as="ورود به عنوان",
        team="تیم",
        error_title="درخواست ورود نامعتبر",
        error_intro="برنامه‌ای که شما را به اینجا فرستاد، یا نشانی بازگشت آن، ثبت نشده است.",
        roles={
            "admin": "مدیر سیستم",
            "sales_manager": "مدیر فروش",
            "sales_rep": "نمایندهٔ فروش",
            "orders_clerk": "کارمند سفارش‌ها",
            "service_agent": "کارشناس پشتیبانی",
            "marketing": "بازاریابی",
        },
    ),
    "en": PageTexts(
        direction="ltr",
        title="Development sign-in",
        intro="Choose a demo user to sign in to {client}. There is no password here.",
        warning="The development token issuer. Never in production.",
        sign_in_as="Sign in as",
        team="Team",
        error_title="Invalid sign-in request",
        error_intro="The application that sent you here, or its return address, is not registered.",
        roles={
            "admin": "Administrator",
            "sales_manager": "Sales manager",
            "sales_rep": "Sales rep",
            "orders_clerk": "Orders clerk",
            "service_agent": "Service agent",
            "marketing": "Marketing",
        },
    ),
}
DEFAULT_LOCALE = "he"

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
    "ul{list-style:none;padding:0}li{margin:.5rem 0}"
    "button{width:100%;padding:.75rem;font:inherit;text-align:start;cursor:pointer}"
    "button span{display:block}.role{font-weight:bold}.warning{color:#8a3b00}"
)
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()


def page_csp(form_target: str = "") -> str:
    """The API's CSP plus this page's style (by hash) and where its form may go (nowhere without one)."""
    form_action = f"form-action 'self' {form_target}" if form_target else "form-action 'none'"
    return f"default-src 'none'; style-src '{STYLE_HASH}'; {form_action}; base-uri 'none'; frame-ancestors 'none'"


def choose_locale(ui_locales: str) -> str:
    """The first of the space-separated BCP 47 tags (OIDC `ui_locales`) the pages speak, else Hebrew."""
    for tag in ui_locales.split():
        language = tag.split("-")[0].lower()
        if language in TEXTS:
            return language
    return DEFAULT_LOCALE


def _html(locale: str, title: str, body: str) -> str:
    texts = TEXTS[locale]
    return (
        f'<!DOCTYPE html>\n<html lang="{locale}" dir="{texts.direction}">\n<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body><main>\n{body}</main></body>\n</html>\n"
    )


def _user_button(role: str, texts: PageTexts) -> str:
    """A submit button for the demo user of role; its accessible name starts with what it shows."""
    user = DEMO_USERS[role]
    role_name = texts.roles.get(role, role)
    label = f"{texts.sign_in_as} {role_name} ({role}): {user.subject}"
    team = ""
    if user.team_id:
        label += f", {texts.team} {user.team_id}"
        team = f'<span class="team">{escape(texts.team)}: <bdi>{escape(user.team_id)}</bdi></span>'
    return (
        f'<li><button type="submit" name="role" value="{escape(role)}" aria-label="{escape(label)}">'
        f'<span class="role">{escape(role_name)} (<bdi>{escape(role)}</bdi>)</span>'
        f'<span class="subject"><bdi>{escape(user.subject)}</bdi></span>{team}</button></li>\n'
    )


def sign_in_page(hidden: dict[str, str], client_id: str, redirect_origin: str, locale: str) -> HTMLResponse:
    """One form, one submit button per demo user; the authorization request rides along as hidden
    fields (empty ones left out). The form posts to this same path ("authorize", relative, so a path
    prefix added by an ingress keeps working)."""
    texts = TEXTS[locale]
    fields = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">\n'
        for name, value in hidden.items()
        if value
    )
    buttons = "".join(_user_button(role, texts) for role in DEMO_USERS)
    client = f"<bdi>{escape(client_id)}</bdi>"
    body = (
        f"<h1>{escape(texts.title)}</h1>\n<p>{escape(texts.intro).replace('{client}', client)}</p>\n"
        f'<p class="warning">{escape(texts.warning)}</p>\n'
        f'<form method="post" action="authorize">\n{fields}<ul>\n{buttons}</ul>\n</form>\n'
    )
    headers = {**NO_STORE, "Content-Security-Policy": page_csp(redirect_origin)}
    return HTMLResponse(_html(locale, texts.title, body), headers=headers)


def error_page(reason: str, locale: str) -> HTMLResponse:
    """400: the request names no registered client or redirect URI, so it cannot be sent back."""
    texts = TEXTS[locale]
    body = (
        f"<h1>{escape(texts.error_title)}</h1>\n<p>{escape(texts.error_intro)}</p>\n"
        f'<p lang="en" dir="ltr"><code>{escape(reason)}</code></p>\n'
    )
    headers = {**NO_STORE, "Content-Security-Policy": page_csp()}
    return HTMLResponse(_html(locale, texts.error_title, body), status_code=400, headers=headers)
