"""Response bodies of /search."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from crm_gateway.features.customers.schemas import Customer


class CustomerMatch(BaseModel):
    customer: Customer
    match: Literal[
        "unspecified", "phone", "email", "name", "name_prefix", "name_sounds_like", "ticket_number", "order"
    ] = Field(
        description="How it matched: name = every word as typed (letters, points and word order "
        "folded); name_prefix = the last word starts one of the name's; name_sounds_like = another "
        "spelling of at least one word (same consonants); ticket_number / order = the customer of the "
        "ticket number or order id searched for"
    )


class CustomerSearch(BaseModel):
    matches: list[CustomerMatch]
