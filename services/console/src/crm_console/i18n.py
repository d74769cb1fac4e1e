"""Languages of the console: Hebrew, Persian (right to left) and English; words, numbers, dates, money.

Persian shows Solar Hijri (Jalali) dates and Persian digits; Hebrew shows Gregorian dates in
Hebrew; English is left to right. Phone numbers, ids and codes are wrapped by the templates in
``<bdi dir="ltr">`` so a right-to-left line never reorders their characters. A date a page shows
goes through ``t.when()``/``t.day()``: a ``<time datetime>`` element, so the ISO value is there
for machines and for console.js, which adds the Hebrew-calendar date on Hebrew pages.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import jdatetime
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from markupsafe import Markup

from crm_kit import calendars

LOCALES = ("he", "fa", "en")
RTL = frozenset({"he", "fa"})
BABEL = {"he": "he_IL", "fa": "fa_IR", "en": "en_US"}
# The zone dates are shown in: the business's own (Israel for Hebrew and English, Iran for Persian).
ZONES = {"he": ZoneInfo("Asia/Jerusalem"), "fa": ZoneInfo("Asia/Tehran"), "en": ZoneInfo("Asia/Jerusalem")}
_PERSIAN_DIGITS = str.maketrans("0123456789,.", "۰۱۲۳۴۵۶۷۸۹٬٫")
# What a template passes to be shown as a moment or a day (named here: inside Translator the
# names datetime and date are its methods).
Moment = str | datetime | None
Day = str | date | None

MESSAGES: dict[str, dict[str, str]] = {
    "app": {"he": "CRM", "fa": "CRM", "en": "CRM"},
    "sign_in": {"he": "כניסה", "fa": "ورود", "en": "Sign in"},
    "sign_out": {"he": "יציאה", "fa": "خروج", "en": "Sign out"},
    "signed_out": {"he": "יצאת מהמערכת.", "fa": "از سامانه خارج شدید.", "en": "You are signed out."},
    "welcome": {"he": "ברוכים הבאים ל-CRM", "fa": "به CRM خوش آمدید", "en": "Welcome to the CRM"},
    "language": {"he": "שפה", "fa": "زبان", "en": "Language"},
    "menu": {"he": "תפריט ראשי", "fa": "منوی اصلی", "en": "Main menu"},
    "menu_manage": {"he": "ניהול צוות", "fa": "مدیریت تیم", "en": "Team"},
    "menu_marketing": {"he": "שיווק", "fa": "بازاریابی", "en": "Marketing"},
    "menu_admin": {"he": "ניהול מערכת", "fa": "مدیریت سامانه", "en": "Admin"},
    "work": {"he": "רשימת העבודה שלי", "fa": "فهرست کار من", "en": "My work list"},
    "pipelines": {"he": "צנרות מכירה", "fa": "قیف‌های فروش", "en": "Pipelines"},
    "board": {"he": "לוח", "fa": "تابلو", "en": "Board"},
    "orders": {"he": "הזמנות", "fa": "سفارش‌ها", "en": "Orders"},
    "order": {"he": "הזמנה", "fa": "سفارش", "en": "Order"},
    "lead": {"he": "ליד", "fa": "سرنخ", "en": "Lead"},
    "deal": {"he": "עסקה", "fa": "معامله", "en": "Deal"},
    "name": {"he": "שם", "fa": "نام", "en": "Name"},
    "phone": {"he": "טלפון", "fa": "تلفن", "en": "Phone"},
    "email": {"he": "דוא״ל", "fa": "ایمیل", "en": "E-mail"},
    "source": {"he": "מקור", "fa": "منبع", "en": "Source"},
    "status": {"he": "סטטוס", "fa": "وضعیت", "en": "Status"},
    "time_left": {"he": "זמן למענה", "fa": "زمان باقی‌مانده برای پاسخ", "en": "Time left to answer"},
    "overdue": {"he": "באיחור", "fa": "دیرکرد", "en": "Overdue"},
    "answered": {"he": "נענה", "fa": "پاسخ داده شد", "en": "Answered"},
    "no_deadline": {"he": "ללא יעד", "fa": "بدون مهلت", "en": "No deadline"},
    "created": {"he": "נוצר", "fa": "ایجاد", "en": "Created"},
    "empty_work": {"he": "אין לידים פתוחים. מצוין!", "fa": "سرنخ بازی نیست.", "en": "No open leads."},
    "live": {"he": "מתעדכן אוטומטית", "fa": "به‌روزرسانی خودکار", "en": "Updates live"},
    "routing": {"he": "למה הליד הגיע אליי", "fa": "چرا این سرنخ به من رسید", "en": "Why this lead came to me"},
    "assigned_to": {"he": "שויך ל", "fa": "واگذار شده به", "en": "Assigned to"},
    "score": {"he": "סיכוי להמרה", "fa": "احتمال تبدیل", "en": "Chance to convert"},
    "score_why": {"he": "למה", "fa": "چرا", "en": "Why"},
    "score_field_source": {"he": "מקור", "fa": "منبع", "en": "Source"},
    "score_field_campaign": {"he": "קמפיין", "fa": "کمپین", "en": "Campaign"},
    "score_field_product_line": {"he": "קו מוצרים", "fa": "خط محصول", "en": "Product line"},
    "score_none": {"he": "ללא", "fa": "هیچ", "en": "none"},
    "score_model": {
        "he": "נלמד מ-{won} לידים שנסגרו בהצלחה ו-{lost} שאבדו",
        "fa": "آموخته از {won} سرنخ موفق و {lost} سرنخ از‌دست‌رفته",
        "en": "Learned from {won} won and {lost} lost leads",
    },
    "score_kind_logistic_regression": {
        "he": "מודל חזק יותר (רגרסיה לוגיסטית על השדות וצמדיהם) גבר על הבסיסי בבדיקה: {auc} מול {nb}",
        "fa": "مدل قوی‌تر (رگرسیون لجستیک روی فیلدها و جفت‌هایشان) در آزمون برتر بود: {auc} در برابر {nb}",
        "en": (
            "A stronger model (logistic regression over the fields and their pairs) beat the simple one "
            "on the test: {auc} against {nb}"
        ),
    },
    "score_kind_naive_bayes": {
        "he": "המודל הבסיסי (בייס נאיבי)",
        "fa": "مدل ساده (بیز ساده)",
        "en": "The simple model (naive Bayes)",
    },
    "score_auc": {
        "he": "דיוק בבדיקה על {n} הלידים האחרונים (AUC, 0.5 = ניחוש): {auc}",
        "fa": "دقت روی {n} سرنخ آخر (AUC، ۰٫۵ = حدس): {auc}",
        "en": "Accuracy on the latest {n} leads (AUC, 0.5 = a guess): {auc}",
    },
    "score_too_little": {
        "he": "עדיין אין מספיק היסטוריה: {won} לידים שנסגרו בהצלחה ו-{lost} שאבדו (צריך {needed} מכל סוג).",
        "fa": "هنوز سابقه کافی نیست: {won} سرنخ موفق و {lost} از‌دست‌رفته (از هر کدام {needed} لازم است).",
        "en": "Not enough history yet: {won} won and {lost} lost leads ({needed} of each needed).",
    },
    "activities": {"he": "פעילויות ונגיעות", "fa": "فعالیت‌ها و تماس‌ها", "en": "Activities and touches"},
    "touches": {"he": "פניות חוזרות", "fa": "مراجعه‌های دوباره", "en": "Returning touches"},
    "log_activity": {"he": "תיעוד פעילות", "fa": "ثبت فعالیت", "en": "Log an activity"},
    "kind": {"he": "סוג", "fa": "نوع", "en": "Kind"},
    "kind_call": {"he": "שיחה", "fa": "تماس", "en": "Call"},
    "kind_meeting": {"he": "פגישה", "fa": "جلسه", "en": "Meeting"},
    "kind_task": {"he": "משימה", "fa": "کار", "en": "Task"},
    "kind_note": {"he": "הערה", "fa": "یادداشت", "en": "Note"},
    "kind_email": {"he": "דוא״ל", "fa": "ایمیل", "en": "E-mail"},
    "kind_sms": {"he": "SMS", "fa": "پیامک", "en": "SMS"},
    "subject": {"he": "נושא", "fa": "موضوع", "en": "Subject"},
    "notes": {"he": "פרטים", "fa": "توضیحات", "en": "Details"},
    "due": {"he": "מועד", "fa": "موعد", "en": "Due"},
    "duplicates_hint": {
        "he": "לידים דומים לבדיקה",
        "fa": "سرنخ‌های مشابه برای بررسی",
        "en": "Possible duplicates to review",
    },
    "call_outcome": {"he": "תוצאת השיחה", "fa": "نتیجه‌ی تماس", "en": "Call outcome"},
    "outcome_answered": {"he": "נענתה", "fa": "پاسخ داد", "en": "Answered"},
    "outcome_no_answer": {"he": "לא נענתה", "fa": "پاسخ نداد", "en": "No answer"},
    "outcome_busy": {"he": "תפוס", "fa": "اشغال", "en": "Busy"},
    "outcome_voicemail": {"he": "תא קולי", "fa": "پیغام‌گیر", "en": "Voicemail"},
    "outcome_wrong_number": {"he": "מספר שגוי", "fa": "شماره‌ی اشتباه", "en": "Wrong number"},
    "outcome_callback_requested": {"he": "ביקש שיחזרו אליו", "fa": "درخواست تماس مجدد", "en": "Callback requested"},
    "start_time": {"he": "התחלה", "fa": "شروع", "en": "Start"},
    "end_time": {"he": "סיום", "fa": "پایان", "en": "End"},
    "save": {"he": "שמירה", "fa": "ذخیره", "en": "Save"},
    "convert": {"he": "המרה לעסקה", "fa": "تبدیل به معامله", "en": "Convert to a deal"},
    "pipeline": {"he": "צנרת", "fa": "قیف فروش", "en": "Pipeline"},
    "deal_title": {"he": "כותרת העסקה", "fa": "عنوان معامله", "en": "Deal title"},
    "open_deal": {"he": "לעסקה", "fa": "رفتن به معامله", "en": "Open the deal"},
    "stage": {"he": "שלב", "fa": "مرحله", "en": "Stage"},
    "move_to": {"he": "העברה לשלב", "fa": "انتقال به مرحله", "en": "Move to stage"},
    "amount": {"he": "סכום", "fa": "مبلغ", "en": "Amount"},
    "close_won": {"he": "סגירה בהצלחה", "fa": "بستن با موفقیت", "en": "Close as won"},
    "close_lost": {"he": "סגירה כהפסד", "fa": "بستن به‌عنوان از دست رفته", "en": "Close as lost"},
    "lost_reason": {"he": "סיבת הפסד", "fa": "دلیل از دست رفتن", "en": "Lost reason"},
    "won_line_hint": {
        "he": "עסקה שנסגרה בהצלחה צריכה את שורות ההזמנה (או הצעת מחיר שהתקבלה).",
        "fa": "معامله‌ی موفق به اقلام سفارش نیاز دارد (یا پیش‌فاکتور پذیرفته‌شده).",
        "en": "A won deal needs its order lines (or an accepted quote).",
    },
    "sku": {"he": "מק״ט", "fa": "کد کالا", "en": "SKU"},
    "description": {"he": "תיאור", "fa": "شرح", "en": "Description"},
    "quantity": {"he": "כמות", "fa": "تعداد", "en": "Quantity"},
    "unit_price": {"he": "מחיר ליחידה", "fa": "قیمت واحد", "en": "Unit price"},
    "currency": {"he": "מטבע", "fa": "ارز", "en": "Currency"},
    "ship": {"he": "משלוח", "fa": "ارسال", "en": "Ship"},
    "carrier": {"he": "חברת שילוח", "fa": "شرکت حمل", "en": "Carrier"},
    "tracking": {"he": "מספר מעקב", "fa": "شماره رهگیری", "en": "Tracking number"},
    "delivery_date": {"he": "תאריך מסירה משוער", "fa": "تاریخ تحویل تخمینی", "en": "Estimated delivery date"},
    "messages": {"he": "הודעות ללקוח", "fa": "پیام‌ها به مشتری", "en": "Messages to the customer"},
    "no_messages": {"he": "עדיין לא נשלחו הודעות.", "fa": "هنوز پیامی فرستاده نشده.", "en": "No messages yet."},
    "shipped": {"he": "נשלח", "fa": "ارسال شد", "en": "Shipped"},
    "day": {"he": "יום", "fa": "روز", "en": "Day"},
    "month": {"he": "חודש", "fa": "ماه", "en": "Month"},
    "year": {"he": "שנה", "fa": "سال", "en": "Year"},
    "no_such_date": {"he": "אין תאריך כזה.", "fa": "چنین تاریخی وجود ندارد.", "en": "There is no such date."},
    "time_of_day": {"he": "שעה", "fa": "ساعت", "en": "Time"},
    "lines": {"he": "שורות", "fa": "اقلام", "en": "Lines"},
    "total": {"he": "סה״כ", "fa": "جمع", "en": "Total"},
    "deals": {"he": "עסקאות", "fa": "معامله‌ها", "en": "Deals"},
    "weighted": {"he": "משוקלל", "fa": "وزنی", "en": "Weighted"},
    "drag_hint": {
        "he": "גררו עסקה לשלב אחר, או בחרו שלב בכרטיס.",
        "fa": "معامله را به مرحله‌ی دیگر بکشید یا مرحله را در کارت انتخاب کنید.",
        "en": "Drag a deal to another stage, or pick a stage on its card.",
    },
    "conflict": {
        "he": "מישהו אחר שינה את הרשומה בינתיים. הדף נטען מחדש עם המצב העדכני.",
        "fa": "کس دیگری در این فاصله رکورد را تغییر داد. صفحه با آخرین وضعیت بارگذاری شد.",
        "en": "Someone else changed this record meanwhile; the page shows its latest state.",
    },
    "more_cards": {"he": "עוד עסקאות", "fa": "معامله‌های بیشتر", "en": "More deals"},
    "error": {"he": "שגיאה", "fa": "خطا", "en": "Error"},
    "not_found": {"he": "הרשומה לא נמצאה.", "fa": "رکورد پیدا نشد.", "en": "Not found."},
    "forbidden": {"he": "אין לך הרשאה לזה.", "fa": "اجازه‌ی این کار را ندارید.", "en": "You may not do that."},
    "unavailable": {
        "he": "השירות אינו זמין כרגע. נסו שוב בעוד רגע.",
        "fa": "سرویس اکنون در دسترس نیست. کمی بعد دوباره امتحان کنید.",
        "en": "The service is unavailable; try again in a moment.",
    },
    "back": {"he": "חזרה", "fa": "بازگشت", "en": "Back"},
    "next_page": {"he": "הבא", "fa": "بعدی", "en": "Next"},
    "customer": {"he": "לקוח", "fa": "مشتری", "en": "Customer"},
    "role_admin": {"he": "מנהל מערכת", "fa": "مدیر سامانه", "en": "Administrator"},
    "role_sales_manager": {"he": "מנהל מכירות", "fa": "مدیر فروش", "en": "Sales manager"},
    "role_sales_rep": {"he": "נציג מכירות", "fa": "کارشناس فروش", "en": "Sales rep"},
    "role_orders_clerk": {"he": "פקיד הזמנות", "fa": "کارمند سفارش‌ها", "en": "Orders clerk"},
    "role_service_agent": {"he": "נציג שירות", "fa": "کارشناس پشتیبانی", "en": "Service agent"},
    "role_marketing": {"he": "שיווק", "fa": "بازاریابی", "en": "Marketing"},
    "status_new": {"he": "חדש", "fa": "جدید", "en": "New"},
    "status_assigned": {"he": "משויך", "fa": "واگذار شده", "en": "Assigned"},
    "status_contacted": {"he": "נוצר קשר", "fa": "تماس گرفته شد", "en": "Contacted"},
    "status_converted": {"he": "הומר", "fa": "تبدیل شد", "en": "Converted"},
    "status_open": {"he": "פתוחה", "fa": "باز", "en": "Open"},
    "status_won": {"he": "נסגרה בהצלחה", "fa": "موفق", "en": "Won"},
    "status_lost": {"he": "הפסד", "fa": "از دست رفته", "en": "Lost"},
    "status_pending": {"he": "ממתינה", "fa": "در انتظار", "en": "Pending"},
    "status_shipped": {"he": "נשלחה", "fa": "ارسال شده", "en": "Shipped"},
    "status_sent": {"he": "נשלחה", "fa": "فرستاده شد", "en": "Sent"},
    "status_failed": {"he": "נכשלה", "fa": "ناموفق", "en": "Failed"},
    "status_suppressed": {
        "he": "לא נשלחה (אין הסכמה)",
        "fa": "فرستاده نشد (بدون رضایت)",
        "en": "Not sent (no consent)",
    },
}


JALALI_MONTHS = calendars.JALALI_MONTHS


def jalali_parts(iso_day: str) -> tuple[int, int, int]:
    """A Gregorian ISO date as its Solar Hijri (year, month, day)."""
    return calendars.jalali(date.fromisoformat(iso_day))


def gregorian_of_jalali(year: str, month: str, day: str) -> str | None:
    """The ISO (Gregorian) date of a Solar Hijri year/month/day from a form; None when it is no
    date (31 Mehr, 30 Esfand of a common year, text)."""
    try:
        gregorian: date = jdatetime.date(int(year), int(month), int(day)).togregorian()
    except (TypeError, ValueError):
        return None
    return gregorian.isoformat()


def words(more: dict[str, dict[str, str]]) -> None:
    """Add a page module's words (he, fa, en each); a key used twice is a mistake, refused."""
    clash = set(more) & set(MESSAGES)
    if clash:
        raise ValueError(f"message keys defined twice: {sorted(clash)}")
    MESSAGES.update(more)


class Translator:
    """Everything a template needs for one locale: words, direction, numbers, dates, money."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in LOCALES else "he"
        self.dir = "rtl" if self.locale in RTL else "ltr"
        self._babel = BABEL[self.locale]
        self._zone = ZONES[self.locale]

    def __call__(self, key: str) -> str:
        words = MESSAGES.get(key)
        if words is None:
            return key
        return words.get(self.locale) or words["en"]

    def status(self, value: str) -> str:
        return self(f"status_{value.lower()}") if f"status_{value.lower()}" in MESSAGES else value

    def digits(self, text: str) -> str:
        return text.translate(_PERSIAN_DIGITS) if self.locale == "fa" else text

    def number(self, value: float | int) -> str:
        return self.digits(format_decimal(value, locale="en_US" if self.locale == "fa" else self._babel))

    def money(self, money: dict[str, Any] | None) -> str:
        if not money:
            return ""
        amount = int(money.get("amount_minor", 0)) / 100
        code = str(money.get("currency_code") or "ILS")
        return self.digits(format_currency(amount, code, locale=self._babel))

    def _parse(self, value: str | datetime | None) -> datetime | None:
        if value in (None, ""):
            return None
        if isinstance(value, datetime):
            moment = value
        else:
            try:
                moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self._zone)

    def datetime(self, value: str | datetime | None) -> str:
        moment = self._parse(value)
        if moment is None:
            return ""
        if self.locale == "fa":
            jalali = jdatetime.datetime.fromgregorian(datetime=moment.replace(tzinfo=None), locale="fa_IR")
            return self.digits(jalali.strftime("%d %B %Y، %H:%M"))
        return format_datetime(moment, "d MMM y, HH:mm", locale=self._babel)

    def date(self, value: str | date | None) -> str:
        if value in (None, ""):
            return ""
        try:
            day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        except ValueError:
            return str(value)
        if self.locale == "fa":
            return self.digits(jdatetime.date.fromgregorian(date=day, locale="fa_IR").strftime("%d %B %Y"))
        return format_date(day, "d MMM y", locale=self._babel)

    def when(self, value: Moment) -> Markup:
        """A moment as text (as ``datetime()`` shows it) in a ``<time datetime>`` holding the moment
        in ISO form with its offset, to the second (HTML allows at most three decimals): machines
        and console.js (the Hebrew-calendar date) read that, never the localised text. Empty or
        unreadable: nothing."""
        moment = self._parse(value)
        if moment is None:
            return Markup("")
        return self._time(moment.isoformat(timespec="seconds"), self.datetime(moment))

    def day(self, value: Day) -> Markup:
        """A calendar day as text (as ``date()`` shows it) in a ``<time datetime="YYYY-MM-DD">``.
        A value that is no date is shown as it came (escaped), as ``date()`` does, without <time>."""
        if value in (None, ""):
            return Markup("")
        try:
            day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        except ValueError:
            return Markup("{}").format(self.date(value))
        return self._time(day.isoformat()[:10], self.date(value))

    def _time(self, iso: str, text: str) -> Markup:
        # dir isolates the text from what follows: console.js puts the Hebrew date ("26 בכסלו 5787")
        # right after it, and without isolation its day number joins the time's digits ("07:4326").
        return Markup('<time datetime="{}" dir="{}">{}</time>').format(iso, self.dir, text)

    def duration(self, seconds: int) -> str:
        """Time left (or overdue) as h:mm, in the locale's digits."""
        if seconds < 0:
            # Overdue counts whole minutes begun: 20 s late reads -0:01, never -0:00.
            minutes = -(-abs(int(seconds)) // 60)
            return self.digits(f"-{minutes // 60}:{minutes % 60:02d}")
        s = int(seconds)
        return self.digits(f"{s // 3600}:{(s % 3600) // 60:02d}")
