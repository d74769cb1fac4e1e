"""Business metrics of orders."""

from prometheus_client import Counter

ORDERS_CREATED = Counter("crm_orders_created_total", "Orders created from won deals", ["currency_code"])
ORDERS_SHIPPED = Counter("crm_orders_shipped_total", "Orders shipped")
