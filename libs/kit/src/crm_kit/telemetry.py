"""OpenTelemetry tracing, and W3C trace context carried over gRPC metadata and NATS headers.

Exporting is configured by OpenTelemetry's own OTEL_* variables: with
OTEL_EXPORTER_OTLP_ENDPOINT set, spans go out over OTLP. Without it no span is recorded (a
recorded span nobody exports only costs CPU: six of them per captured lead, issue 16): spans are
still started, non-recording, so the trace context still flows from the gateway through gRPC
metadata and event headers, and every log line still carries its request's trace id.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, MutableMapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

_configured = False


class EdgeSampler(Sampler):
    """The sampler of the process that takes requests from the public internet (the gateway).

    A client's `traceparent` is kept for correlation (its trace id reaches every service's log
    lines), but its sampled flag is the client's to set — and so is its trace id, which a
    trace-id-ratio sampler would read. Neither decides here: a span whose parent is remote, or
    that has none, is sampled with probability `ratio` by a draw of our own, so no client can make
    us record and export every request. A span with a local parent follows it, and the services
    behind follow the gateway's decision (OTel's default ParentBased sampler).
    """

    def __init__(self, ratio: float, rng: random.Random | None = None) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError("ratio must be within [0, 1]")
        self.ratio = ratio
        self._rng = rng or random.SystemRandom()

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if parent.is_valid and not parent.is_remote:
            sampled = parent.trace_flags.sampled
        else:
            sampled = self.ratio > 0 and self._rng.random() < self.ratio
        decision = Decision.RECORD_AND_SAMPLE if sampled else Decision.DROP
        return SamplingResult(
            decision, attributes if sampled else None, parent.trace_state if parent.is_valid else None
        )

    def get_description(self) -> str:
        return f"EdgeSampler{{{self.ratio}}}"


def setup_tracing(service: str, *, sampler: Sampler | None = None, record_without_exporter: bool = False) -> None:
    """The process' tracer provider, once. `sampler`: None for OTel's default (ParentBased, or
    what OTEL_TRACES_SAMPLER says); the gateway passes an `EdgeSampler`. Without an exporter
    nothing is recorded, unless record_without_exporter (a test that adds its own processor)."""
    global _configured
    if _configured:
        return
    # Reading OTel's own variable is the documented way to switch the exporter on.
    exporting = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    if not (exporting or record_without_exporter):
        sampler = ALWAYS_OFF
    provider = TracerProvider(resource=Resource.create({"service.name": f"crm-{service}"}), sampler=sampler)
    if exporting:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject_headers(carrier: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write the current trace context (traceparent, tracestate) into carrier."""
    propagate.inject(carrier)
    return carrier


def extract_context(carrier: Mapping[str, str]) -> otel_context.Context:
    return propagate.extract(dict(carrier))
