"""Consent words (domain) ↔ proto enum values, once for the servicer and the ConsentChanged event."""

from __future__ import annotations

from crm.customers.v1 import customers_pb2

C = customers_pb2


def channel(word: str) -> C.ConsentChannel.ValueType:
    return C.ConsentChannel.Value(f"CONSENT_CHANNEL_{word.upper()}")


def purpose(word: str) -> C.ConsentPurpose.ValueType:
    return C.ConsentPurpose.Value(f"CONSENT_PURPOSE_{word.upper()}")


def source(word: str) -> C.ConsentSource.ValueType:
    return C.ConsentSource.Value(f"CONSENT_SOURCE_{word.upper()}")


def channel_word(value: C.ConsentChannel.ValueType) -> str:
    """CONSENT_CHANNEL_SMS → "sms"; "" when unset (the domain refuses it on the field)."""
    return C.ConsentChannel.Name(value).removeprefix("CONSENT_CHANNEL_").lower() if value else ""


def purpose_word(value: C.ConsentPurpose.ValueType) -> str:
    return C.ConsentPurpose.Name(value).removeprefix("CONSENT_PURPOSE_").lower() if value else ""


def source_word(value: C.ConsentSource.ValueType) -> str:
    return C.ConsentSource.Name(value).removeprefix("CONSENT_SOURCE_").lower() if value else ""
