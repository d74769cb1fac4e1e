"""Prometheus metrics shared by every service: RED for gRPC, and the event plumbing.

Business metrics (leads per source, SMS sent, …) live in each service, registered on the
same default registry and served by the same /metrics endpoint.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GRPC_SERVER_HANDLED = Counter(
    "crm_grpc_server_handled_total", "gRPC calls completed by this server", ["grpc_method", "grpc_code"]
)
GRPC_SERVER_SECONDS = Histogram(
    "crm_grpc_server_handling_seconds", "gRPC call latency on the server", ["grpc_method"], buckets=LATENCY_BUCKETS
)
GRPC_CLIENT_HANDLED = Counter(
    "crm_grpc_client_handled_total", "gRPC calls made by this process", ["grpc_method", "grpc_code"]
)
GRPC_CLIENT_SECONDS = Histogram(
    "crm_grpc_client_handling_seconds",
    "gRPC call latency seen by the client",
    ["grpc_method"],
    buckets=LATENCY_BUCKETS,
)
OUTBOX_BACKLOG = Gauge("crm_outbox_backlog", "Outbox rows not yet published")
OUTBOX_OLDEST_AGE = Gauge("crm_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row")
EVENTS_PUBLISHED = Counter("crm_events_published_total", "Events published from the outbox", ["event_type"])
PUBLISH_ERRORS = Counter("crm_outbox_publish_errors_total", "Failed attempts to publish an outbox batch")
EVENTS_CONSUMED = Counter(
    "crm_events_consumed_total", "Events handled by a consumer", ["consumer", "event_type", "outcome"]
)
EVENT_REDELIVERIES = Counter("crm_event_redeliveries_total", "Events delivered more than once", ["consumer"])
DEAD_LETTERS = Counter("crm_dead_letters_total", "Events recorded as dead letters", ["consumer"])
CONSUMER_PENDING = Gauge(
    "crm_consumer_pending", "Events in the stream not yet delivered to the durable consumer (its lag)", ["consumer"]
)
HANDLER_SECONDS = Histogram("crm_event_handler_seconds", "Event handler latency", ["consumer"], buckets=LATENCY_BUCKETS)


def serve_metrics(port: int, *, host: str) -> None:
    """Expose /metrics on host:port (`metrics_host`: loopback locally, all interfaces in a pod,
    where Prometheus scrapes it by the pod's IP)."""
    start_http_server(port, addr=host)


PERIODIC_RUNS = Counter(
    "crm_periodic_job_runs_total", "Runs of a service's periodic jobs (SLA scans, reminders, …)", ["task", "outcome"]
)
