"""The company's calendar: its IANA time zone, the day boundaries of quote dates and expiry (sales)
and of target periods (reporting). One rule and one setting for every service that needs it."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, field_validator

DEFAULT_TIME_ZONE = "Asia/Jerusalem"


def company_zone(name: str) -> ZoneInfo:
    """The company's time zone by its IANA name; an unknown name is a configuration error (the
    service refuses to start rather than fail every quote or report later)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (an IANA name, e.g. {DEFAULT_TIME_ZONE})") from exc


class CompanyCalendarSettings(BaseModel):
    """Mixed into a service's settings: CRM_COMPANY_TIME_ZONE, checked when the service starts."""

    company_time_zone: str = DEFAULT_TIME_ZONE

    @field_validator("company_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        company_zone(value)
        return value
