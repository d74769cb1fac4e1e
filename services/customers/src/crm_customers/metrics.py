"""Business metrics of customers."""

from prometheus_client import Counter

CUSTOMERS_CREATED = Counter("crm_customers_created_total", "Customer profiles created")
TIMELINE_ENTRIES = Counter("crm_timeline_entries_total", "Timeline entries recorded", ["kind"])
