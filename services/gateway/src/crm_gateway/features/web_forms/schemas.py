"""Request and response bodies of the web-to-lead keys (/web-form-keys) and the public form
submissions they allow (/public/web-form-submissions)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from crm.leads.v1 import leads_pb2
from crm_gateway.convert import STRIPPED, Code, Locale, RequestBody, RequiredText, ShortText
from crm_gateway.features.leads.schemas import Email, LeadContactBody, PhoneNumber


class CreateWebFormKeyIn(RequestBody):
    display_name: RequiredText
    source: Code
    campaign: ShortText = ""

    def to_proto(self) -> leads_pb2.CreateWebFormKeyRequest:
        return leads_pb2.CreateWebFormKeyRequest(
            display_name=self.display_name, source=self.source, campaign=self.campaign
        )


class WebFormSubmissionIn(LeadContactBody):
    """A public form's fields (JSON or application/x-www-form-urlencoded). `website` is the
    honeypot: people never see it, bots fill it in."""

    full_name: RequiredText
    phone_number: PhoneNumber = ""
    email: Email = ""
    locale: Locale = "he-IL"
    product_line: Annotated[str, StringConstraints(max_length=64), STRIPPED] = ""
    website: Annotated[str, StringConstraints(max_length=200)] = ""


class WebFormKey(BaseModel):
    id: str
    display_name: str
    source: str
    campaign: str
    secret_prefix: str
    create_time: datetime | None
    revoke_time: datetime | None
    create_actor: str


class WebFormKeyList(BaseModel):
    web_form_keys: list[WebFormKey]
    next_page_token: str


class WebFormKeyCreated(BaseModel):
    web_form_key: WebFormKey
    secret: str = Field(description="Shown this once; only its hash is stored.")
    html_snippet: str = Field(description="A ready-to-embed form posting to the web-to-lead endpoint.")


class WebFormAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
