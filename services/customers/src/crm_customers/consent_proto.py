"""Consent words (domain) ↔ proto enum values, once for the servicer and the ConsentChanged event
(the chassis' `protoconv` names the prefixes); an unset value is the word "", which the domain
refuses on its field."""

from __future__ import annotations

from crm.customers.v1 import customers_pb2
from crm_kit.protoconv import enum_prefix, enum_word

C = customers_pb2


def channel(word: str) -> C.ConsentChannel.ValueType:
    return C.ConsentChannel.Value(enum_prefix(C.ConsentChannel.DESCRIPTOR) + word.upper())


def purpose(word: str) -> C.ConsentPurpose.ValueType:
    return C.ConsentPurpose.Value(enum_prefix(C.ConsentPurpose.DESCRIPTOR) + word.upper())


def source(word: str) -> C.ConsentSource.ValueType:
    return C.ConsentSource.Value(enum_prefix(C.ConsentSource.DESCRIPTOR) + word.upper())


def channel_word(value: C.ConsentChannel.ValueType) -> str:
    """CONSENT_CHANNEL_SMS → "sms"; "" when unset."""
    return enum_word(C.ConsentChannel.DESCRIPTOR, value, unset="")


def purpose_word(value: C.ConsentPurpose.ValueType) -> str:
    return enum_word(C.ConsentPurpose.DESCRIPTOR, value, unset="")


def source_word(value: C.ConsentSource.ValueType) -> str:
    return enum_word(C.ConsentSource.DESCRIPTOR, value, unset="")
