"""crm_kit.protoconv: enum values as the words the API and the events speak."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


def test_an_enum_value_reads_as_its_word_and_back() -> None:
    from crm.support.v1 import support_pb2
    from crm_kit.protoconv import enum_prefix, enum_word

    kind = support_pb2.DESCRIPTOR.enum_types_by_name["TicketKind"]
    metric = support_pb2.DESCRIPTOR.enum_types_by_name["SlaMetric"]
    assert (enum_prefix(kind), enum_prefix(metric)) == ("TICKET_KIND_", "SLA_METRIC_")
    assert enum_word(kind, support_pb2.TICKET_KIND_COMPLAINT) == "complaint"
    assert enum_word(metric, support_pb2.SLA_METRIC_FIRST_RESPONSE) == "first_response"
    assert enum_word(kind, 999) == "" and enum_word(kind, 999, default="unspecified") == "unspecified"
    assert enum_word(kind, 0) == "unspecified" and enum_word(kind, 0, unset="") == ""
