import grpc
import pytest
from google.rpc import error_details_pb2

from crm_kit.errors import InvalidArgument, require
from crm_kit.protoconv import decode_page_token, encode_page_token, page_size
from crm_kit.settings import ServiceSettings

pytestmark = pytest.mark.unit


def test_invalid_argument_carries_error_info_and_field_violations() -> None:
    error = InvalidArgument("bad", reason="INVALID_PHONE_NUMBER", field_violations=[("phone_number", "nope")])
    status = error.to_status("crm.leads")
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert status.details[0].Unpack(info) and info.reason == "INVALID_PHONE_NUMBER" and info.domain == "crm.leads"
    assert status.details[1].Unpack(bad) and bad.field_violations[0].field == "phone_number"


def test_require_names_every_missing_field() -> None:
    with pytest.raises(InvalidArgument) as err:
        require({"lead_id": "", "title": "x", "deal_id": None})
    assert [f for f, _ in err.value.field_violations] == ["lead_id", "deal_id"]


def test_page_tokens_round_trip_and_reject_garbage() -> None:
    assert decode_page_token(encode_page_token("2026-01-01T00:00:00+00:00", "id-1")) == [
        "2026-01-01T00:00:00+00:00",
        "id-1",
    ]
    assert decode_page_token("") is None
    with pytest.raises(InvalidArgument):
        decode_page_token("!!!not-base64!!!")
    assert page_size(0) == 50 and page_size(1000) == 100 and page_size(7) == 7
    with pytest.raises(InvalidArgument):
        page_size(-1)


class SecretSettings(ServiceSettings):
    service_name: str = "test"
    api_key: str = "dev-sms-key"

    def secrets(self) -> dict[str, str]:
        return {"api_key": self.api_key}


def test_production_refuses_development_secrets() -> None:
    assert SecretSettings(environment="development").api_key == "dev-sms-key"
    with pytest.raises(ValueError, match="api_key"):
        SecretSettings(environment="production")
    assert SecretSettings(environment="production", api_key="a-real-key").api_key == "a-real-key"


def test_page_position_parses_or_says_invalid_argument() -> None:
    from datetime import datetime

    from crm_kit.protoconv import page_position

    token = encode_page_token("2026-01-01T00:00:00+00:00", "id-1")
    assert page_position(token, datetime.fromisoformat, str) == (
        datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
        "id-1",
    )
    assert page_position("", datetime.fromisoformat, str) is None
    for bad in (encode_page_token("x"), encode_page_token(1, 2), encode_page_token("not-a-date", "id")):
        with pytest.raises(InvalidArgument):
            page_position(bad, datetime.fromisoformat, str)


def test_a_generated_postgresql_uri_is_read_as_an_asyncpg_url() -> None:
    """CloudNativePG's app Secret holds postgresql://…; the charts hand its `uri` over unchanged."""
    cnpg = "postgresql://leads:p%40ss@crm-leads-db-rw.crm:5432/leads"
    settings = ServiceSettings(service_name="leads", database_url=cnpg)
    assert settings.database_url == "postgresql+asyncpg://leads:p%40ss@crm-leads-db-rw.crm:5432/leads"
    kept = "postgresql+asyncpg://u@h:5432/d"
    assert ServiceSettings(service_name="leads", database_url=kept).database_url == kept


def test_database_host_points_the_url_at_a_pooler() -> None:
    pooled = ServiceSettings(
        service_name="leads",
        database_url="postgresql://leads:secret@crm-leads-db-rw.crm:5432/leads",
        database_host="crm-leads-db-pooler:5432",
    )
    assert pooled.database_url == "postgresql+asyncpg://leads:secret@crm-leads-db-pooler:5432/leads"
