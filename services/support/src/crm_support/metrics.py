"""Business metrics of the service desk (the dashboards' backlog, SLA attainment and CSAT)."""

from prometheus_client import Counter, Gauge, Histogram

TICKETS_OPENED = Counter("crm_support_tickets_opened_total", "Tickets opened", ["kind", "priority"])
TICKETS_RESOLVED = Counter("crm_support_tickets_resolved_total", "Tickets resolved", ["kind"])
SLA_ESCALATIONS = Counter(
    "crm_support_sla_escalations_total",
    "SLA clocks reaching an escalation level (1 warning, 2 breach, 3 long past)",
    ["metric", "level"],
)
SURVEY_ANSWERS = Counter("crm_support_survey_answers_total", "Satisfaction survey answers", ["score"])
OPEN_TICKETS = Gauge("crm_support_open_tickets", "Open tickets (new, open, pending customer) per queue", ["queue"])
AT_RISK_TICKETS = Gauge("crm_support_at_risk_tickets", "Open tickets at an SLA warning or past a target", ["queue"])
SLA_SCAN_SECONDS = Histogram(
    "crm_support_sla_scan_seconds",
    "One SLA scan pass over the tickets due a look",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30),
)

# Every series exists from the start at 0, so a scrape shows the metric before the first ticket
# and rate() counts the very first increment (an alert on the first breach fires).
for _kind in ("complaint", "question", "return", "repair", "billing", "task"):
    TICKETS_RESOLVED.labels(_kind)
    for _priority in ("low", "normal", "high", "urgent"):
        TICKETS_OPENED.labels(_kind, _priority)
for _metric in ("first_response", "next_response", "resolution"):
    for _level in ("1", "2", "3"):
        SLA_ESCALATIONS.labels(_metric, _level)
for _score in ("1", "2", "3", "4", "5"):
    SURVEY_ANSWERS.labels(_score)
