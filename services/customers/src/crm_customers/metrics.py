"""Business metrics of customers."""

from prometheus_client import Counter

from crm_customers.domain import TouchKind

CUSTOMERS_CREATED = Counter("crm_customers_created_total", "Customer profiles created")
TIMELINE_ENTRIES = Counter("crm_timeline_entries_total", "Timeline entries recorded", ["kind"])
# Every kind exported at 0 from the start: increase() then counts the first entry, and the
# series exists before anything happened.
for _kind in TouchKind:
    TIMELINE_ENTRIES.labels(_kind.value)
CUSTOMERS_MERGED = Counter("crm_customers_merged_total", "Customer profiles merged into another")
