import pytest

from crm_kit.errors import InvalidArgument
from crm_leads.leads import domain

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "locale", "e164"),
    [
        ("050-123-4567", "he-IL", "+972501234567"),
        ("+972 50 123 4567", "he-IL", "+972501234567"),
        ("03-6123456", "he-IL", "+97236123456"),
        ("0912 345 6789", "fa-IR", "+989123456789"),
        ("0912 345 6789", "he-IL", "+989123456789"),
        ("۰۹۱۲۳۴۵۶۷۸۹", "fa-IR", "+989123456789"),
        ("021 8888 7777", "fa-IR", "+982188887777"),
    ],
)
def test_phone_numbers_become_e164(raw: str, locale: str, e164: str) -> None:
    assert domain.normalize_phone(raw, locale) == e164


def test_bad_phone_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.normalize_phone("12345", "he-IL")
    assert err.value.field_violations[0][0] == "phone_number"


def test_a_source_code_must_have_the_catalogue_format() -> None:
    # Whether it exists is the catalogue's (the database's) answer: see test_campaigns.
    assert domain.normalize_source(" TikTok ") == "tiktok"
    with pytest.raises(InvalidArgument) as err:
        domain.normalize_source("tik tok!")
    assert err.value.field_violations[0][0] == "source"


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_new_lead(
            full_name="x", phone_number="050-12", email="", source="tik tok!", campaign="", locale="", product_line=""
        )
    assert {f for f, _ in err.value.field_violations} == {"phone_number", "source"}


@pytest.mark.parametrize(
    ("raw", "locale"),
    [
        ("050-123-45678", "he-IL"),  # an Israeli mobile number and a digit too many
        ("050-123-4567-99", "he-IL"),
        ("+972 50 123 45678", "he-IL"),
        ("03-612-34567", "he-IL"),  # a Tel Aviv number and a digit too many
        ("0912 345 67890", "fa-IR"),
        ("+1 650 253 00001", "en-US"),
    ],
)
def test_a_number_with_digits_past_a_valid_one_is_refused(raw: str, locale: str) -> None:
    """The lenient parse keeps every digit (+9725012345678: another number, no one's or someone
    else's); a number that is not a possible one of its country is refused, naming the field."""
    with pytest.raises(InvalidArgument) as err:
        domain.normalize_phone(raw, locale)
    assert [field for field, _ in err.value.field_violations] == ["phone_number"]


def test_a_number_in_a_range_newer_than_the_metadata_is_still_taken() -> None:
    # 050-1xx is in use but not (yet) in the library's metadata: it has the shape of a mobile number.
    assert domain.normalize_phone("050-111-2233", "he-IL") == "+972501112233"
    # The same on a Persian form: an Israeli number of a range the library does not know yet.
    assert domain.normalize_phone("052-121-8521", "fa-IR") == "+972521218521"
    assert domain.normalize_phone("050-111-2233", "fa-IR") == "+972501112233"


def new_lead(**fields: str) -> domain.NewLead:
    values = {"full_name": "Dana", "phone_number": "", "email": "", "source": "email", "campaign": "", "locale": ""}
    return domain.validate_new_lead(**{**values, "product_line": "", **fields})


def test_a_lead_with_an_e_mail_and_no_phone_is_taken() -> None:
    lead = new_lead(email=" Dana@Example.com ")
    assert (lead.phone_number, lead.email) == ("", "dana@example.com")


def test_a_lead_with_neither_phone_nor_e_mail_names_both() -> None:
    with pytest.raises(InvalidArgument) as err:
        new_lead(phone_number=" ", email="")
    assert {field for field, _ in err.value.field_violations} == {"phone_number", "email"}


@pytest.mark.parametrize(
    ("reach", "covered"),
    [
        (domain.LeadReach(all_leads=True), True),
        (domain.LeadReach(team_id="team-media"), True),
        (domain.LeadReach(rep_id="rep-dana"), True),
        (domain.LeadReach(team_id="team-digital", rep_id="rep-sara"), False),
        (domain.LeadReach(), False),
    ],
)
def test_a_reach_covers_every_lead_a_teams_or_a_reps(reach: domain.LeadReach, covered: bool) -> None:
    assert reach.covers(rep_id="rep-dana", team_id="team-media") is covered
    # An unassigned lead (no rep, no team) is within an admin's reach only.
    assert reach.covers(rep_id="", team_id="") is reach.all_leads


def test_request_scopes_of_callers_forms_and_imports_never_meet() -> None:
    scopes = {
        domain.actor_request_scope("import:x"),
        domain.import_request_scope("x"),
        domain.web_form_request_scope("x"),
        domain.actor_request_scope("web-form-key:x"),
    }
    assert len(scopes) == 4


def test_a_local_number_with_a_digit_too_many_is_not_read_as_a_foreign_landline() -> None:
    # 054-433-2048 is an Israeli mobile; with an 8 more, read in Iran it is a Zahedan landline.
    with pytest.raises(InvalidArgument):
        domain.normalize_phone("054-433-20488", "he-IL")
    # Written with its country code, the Iranian landline is taken as it is.
    assert domain.normalize_phone("+98 54 4332 0488", "he-IL") == "+985443320488"
