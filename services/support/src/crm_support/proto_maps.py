"""The proto enums of crm.support.v1 ↔ the domain's lower-case values (TICKET_KIND_COMPLAINT ↔
"complaint"), derived from the enum descriptors so the two never drift apart."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import EnumDescriptor

from crm.support.v1 import support_pb2
from crm_kit.protoconv import enum_word


def _values(enum: EnumDescriptor) -> dict[str, Any]:
    return {enum_word(enum, v.number): v.number for v in enum.values if v.number}


_DESCRIPTORS = support_pb2.DESCRIPTOR.enum_types_by_name
# domain value → proto number, per field (Any: each is its enum's ValueType, which mypy cannot name here)
ENUM_OF: dict[str, dict[str, Any]] = {
    "kind": _values(_DESCRIPTORS["TicketKind"]),
    "channel": _values(_DESCRIPTORS["TicketChannel"]),
    "priority": _values(_DESCRIPTORS["TicketPriority"]),
    "status": _values(_DESCRIPTORS["TicketStatus"]),
    "metric": _values(_DESCRIPTORS["SlaMetric"]),
    "sla_state": _values(_DESCRIPTORS["SlaState"]),
    "visibility": _values(_DESCRIPTORS["MessageVisibility"]),
    "strategy": _values(_DESCRIPTORS["AssignmentStrategy"]),
    "grouping": _values(_DESCRIPTORS["ReportGrouping"]),
}
# proto number → domain value ("" for UNSPECIFIED), per field
VALUE_OF: dict[str, dict[int, str]] = {field: {n: v for v, n in m.items()} for field, m in ENUM_OF.items()}
