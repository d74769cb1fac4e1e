import hashlib
import uuid

import pytest

from crm_kit.errors import InvalidArgument, PermissionDenied
from crm_leads.web_forms import domain

pytestmark = pytest.mark.unit

KEY_ID = "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def test_a_secret_names_its_key_and_carries_32_random_bytes() -> None:
    secret = domain.new_web_form_secret(KEY_ID)
    assert secret.startswith(f"wfk_{KEY_ID}_")
    assert len(secret.removeprefix(f"wfk_{KEY_ID}_")) == 43  # 32 bytes, url-safe base64 unpadded
    assert domain.web_form_key_id(secret) == KEY_ID
    assert domain.new_web_form_secret(KEY_ID) != secret


def test_only_the_sha256_and_a_prefix_of_the_secret_are_kept() -> None:
    secret = domain.new_web_form_secret(KEY_ID)
    stored = domain.hash_web_form_secret(secret)
    assert stored == hashlib.sha256(secret.encode()).hexdigest() and len(stored) == 64
    assert secret not in stored
    assert domain.web_form_secret_prefix(secret) == secret[:12] == f"wfk_{KEY_ID[:8]}"


def test_the_secret_matches_its_hash_only() -> None:
    secret = domain.new_web_form_secret(KEY_ID)
    stored = domain.hash_web_form_secret(secret)
    assert domain.web_form_secret_matches(secret, stored)
    assert not domain.web_form_secret_matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), stored)
    assert not domain.web_form_secret_matches(domain.new_web_form_secret(KEY_ID), stored)


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "abc",
        f"wfk_{KEY_ID}",  # no random part
        f"wfk_{KEY_ID}_",
        f"key_{KEY_ID}_abc",
        "wfk_not-a-uuid_abc",
        f"wfk_{KEY_ID.upper()}_abc",  # ids are stored in canonical (lower case) form
        f"wfk_{uuid.UUID(KEY_ID).hex}_abc",
        f"wfk_{KEY_ID}_" + "a" * 300,
    ],
)
def test_a_malformed_key_is_permission_denied(secret: str) -> None:
    with pytest.raises(PermissionDenied) as err:
        domain.web_form_key_id(secret)
    assert err.value.reason == "WEB_FORM_KEY_INVALID"
    assert err.value.grpc_code.name == "PERMISSION_DENIED"


def test_a_new_key_is_normalized() -> None:
    new = domain.validate_new_web_form_key(display_name="  Landing   page ", source=" Web_Form ", campaign=" spring ")
    assert new == domain.NewWebFormKey(display_name="Landing page", source="web_form", campaign="spring")


def test_every_bad_key_field_is_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_new_web_form_key(display_name="x" * 101, source="tik tok!", campaign="c" * 101)
    assert {f for f, _ in err.value.field_violations} == {"display_name", "source", "campaign"}
    with pytest.raises(InvalidArgument) as missing:
        domain.validate_new_web_form_key(display_name=" ", source="", campaign="")
    assert {f for f, _ in missing.value.field_violations} == {"display_name", "source"}


def test_an_unknown_source_alone_keeps_its_reason() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_new_web_form_key(display_name="Form", source="tik-tok", campaign="")
    assert err.value.reason == "UNKNOWN_SOURCE"
    assert [f for f, _ in err.value.field_violations] == ["source"]


def test_a_keyed_capture_takes_source_and_campaign_from_the_key() -> None:
    domain.check_web_form_capture(source="", campaign=" ")
    with pytest.raises(InvalidArgument) as err:
        domain.check_web_form_capture(source="radio", campaign="spring")
    assert {f for f, _ in err.value.field_violations} == {"source", "campaign"}
