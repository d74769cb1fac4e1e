"""The public edge's sampler: a client's traceparent keeps its trace id for correlation, but the
client cannot make the gateway record (or skip) a trace — not by the sampled flag, not by
choosing a trace id a ratio sampler would pass."""

from __future__ import annotations

import random

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crm_kit.telemetry import EdgeSampler, extract_context

pytestmark = pytest.mark.unit

# Low 64 bits zero: a trace-id-ratio sampler samples this trace id at any ratio above 0.
CHOSEN_TRACE_ID = "4bf92f3577b34da60000000000000000"


def edge(ratio: float, seed: int = 7) -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=EdgeSampler(ratio, rng=random.Random(seed)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("edge"), exporter


def request(tracer: trace.Tracer, flags: str, trace_id: str = CHOSEN_TRACE_ID) -> trace.Span:
    parent = extract_context({"traceparent": f"00-{trace_id}-00f067aa0ba902b7-{flags}"})
    with tracer.start_as_current_span("GET /api/v1/leads", context=parent, kind=trace.SpanKind.SERVER) as span:
        with tracer.start_as_current_span("grpc call") as child:
            assert child.get_span_context().trace_flags.sampled == span.get_span_context().trace_flags.sampled
        return span


def test_a_client_cannot_force_sampling_but_keeps_its_trace_id() -> None:
    tracer, exporter = edge(0.0)

    spans = [request(tracer, "01") for _ in range(200)]

    assert exporter.get_finished_spans() == ()
    assert {format(s.get_span_context().trace_id, "032x") for s in spans} == {CHOSEN_TRACE_ID}
    assert not any(s.get_span_context().trace_flags.sampled for s in spans)


def test_the_gateway_draws_its_own_share_whatever_the_flag() -> None:
    tracer, exporter = edge(0.25)

    for i in range(400):
        request(tracer, "01" if i % 2 else "00")

    servers = [s for s in exporter.get_finished_spans() if s.kind is trace.SpanKind.SERVER]
    # a seeded draw of 400 at 1/4, from clients who all asked (01) or all declined (00) alike
    assert 60 <= len(servers) <= 140
    assert all(format(s.context.trace_id, "032x") == CHOSEN_TRACE_ID for s in servers)


def test_at_ratio_one_every_request_is_recorded_even_unflagged() -> None:
    tracer, exporter = edge(1.0)

    request(tracer, "00")

    assert len(exporter.get_finished_spans()) == 2  # the server span and its child


def test_the_ratio_is_a_probability() -> None:
    with pytest.raises(ValueError):
        EdgeSampler(1.5)
