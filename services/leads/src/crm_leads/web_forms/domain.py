"""Web-to-lead keys: the secret's format and hash, a new key's fields, and what a capture with a
key may carry. Pure, no I/O."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from crm_kit.errors import InvalidArgument, PermissionDenied, raise_all
from crm_leads.leads.domain import normalize_source

# A web-to-lead secret is `wfk_<key id>_<43 url-safe characters: 32 random bytes>`. The key id in
# it finds the stored key in one indexed lookup; only the SHA-256 of the whole secret is stored: the
# secret is 256 random bits, so a fast hash is as safe as a slow one and keeps capture cheap.
WEB_FORM_KEY_PREFIX = "wfk_"
WEB_FORM_SECRET_BYTES = 32
WEB_FORM_SECRET_PREFIX_LENGTH = 12  # "wfk_" and the first 8 characters of the key id
_MAX_SECRET_LENGTH = 200
_NAME_MAX = 100


def new_web_form_secret(key_id: str) -> str:
    """A new secret for the key key_id (shown to its creator once, never stored)."""
    return f"{WEB_FORM_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(WEB_FORM_SECRET_BYTES)}"


def hash_web_form_secret(secret: str) -> str:
    """The stored form of a secret: SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def web_form_secret_prefix(secret: str) -> str:
    """The first characters of a secret, shown in lists to recognise a key; never the whole secret."""
    return secret[:WEB_FORM_SECRET_PREFIX_LENGTH]


def invalid_web_form_key() -> PermissionDenied:
    # One answer for malformed, unknown and wrong secrets: a caller learns nothing about which keys exist.
    return PermissionDenied("web_form_key is not a valid web-to-lead key", reason="WEB_FORM_KEY_INVALID")


def web_form_key_refused(known: bool) -> PermissionDenied:
    # "Revoked" only to a caller that showed the key's secret; everyone else learns nothing.
    if known:
        return PermissionDenied("web_form_key has been revoked", reason="WEB_FORM_KEY_REVOKED")
    return invalid_web_form_key()


def web_form_key_id(secret: str) -> str:
    """The key id a secret names; PermissionDenied when the secret is not of the key format."""
    if len(secret) > _MAX_SECRET_LENGTH or not secret.startswith(WEB_FORM_KEY_PREFIX):
        raise invalid_web_form_key()
    key_id, sep, random_part = secret[len(WEB_FORM_KEY_PREFIX) :].partition("_")
    if not sep or not random_part:
        raise invalid_web_form_key()
    try:
        canonical = str(uuid.UUID(key_id))
    except ValueError:
        raise invalid_web_form_key() from None
    if canonical != key_id:
        raise invalid_web_form_key()
    return key_id


def web_form_secret_matches(secret: str, secret_hash: str) -> bool:
    """Whether secret is the one whose hash is stored (constant-time comparison)."""
    return hmac.compare_digest(hash_web_form_secret(secret), secret_hash)


@dataclass(frozen=True)
class NewWebFormKey:
    display_name: str
    source: str
    campaign: str


def validate_new_web_form_key(*, display_name: str, source: str, campaign: str) -> NewWebFormKey:
    """Check a new key's fields, reporting every bad one at once."""
    violations: list[tuple[str, str]] = []
    name = " ".join(display_name.split())
    if not name:
        violations.append(("display_name", "is required"))
    elif len(name) > _NAME_MAX:
        violations.append(("display_name", f"at most {_NAME_MAX} characters"))
    if len(campaign.strip()) > _NAME_MAX:
        violations.append(("campaign", f"at most {_NAME_MAX} characters"))
    if not source.strip():
        violations.append(("source", "is required"))
    errors: list[InvalidArgument] = []
    if violations:
        message = "invalid web form key: " + "; ".join(f"{f} {d}" for f, d in violations)
        errors.append(InvalidArgument(message, field_violations=violations))
    code = ""
    if source.strip():
        try:
            code = normalize_source(source)
        except InvalidArgument as exc:
            errors.append(exc)
    raise_all(errors)
    return NewWebFormKey(display_name=name, source=code, campaign=campaign.strip())


def check_web_form_capture(*, source: str, campaign: str) -> None:
    """A capture with a web-to-lead key takes source and campaign from the key, never from the form."""
    violations = [
        (name, "must be empty when web_form_key is set: the key's is used")
        for name, value in (("source", source), ("campaign", campaign))
        if value.strip()
    ]
    if violations:
        raise InvalidArgument(
            "source and campaign come from the web_form_key; leave them empty", field_violations=violations
        )
