"""Business metrics of reporting."""

from prometheus_client import Counter, Histogram

EVENTS_RECORDED = Counter("crm_reporting_events_total", "Events recorded in the read model", ["event_type"])
# From seconds (automatic routing) to a day (a lead that waited overnight for a rep).
SPEED_TO_LEAD = Histogram(
    "crm_speed_to_lead_seconds",
    "Time from lead capture to its first assignment",
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400),
)
