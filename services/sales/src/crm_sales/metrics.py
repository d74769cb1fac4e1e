"""Business metrics of sales."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from crm_sales.domain import weighted_minor

DEALS_OPENED = Counter("crm_deals_opened_total", "Deals opened from converted leads")
DEALS_CLOSED = Counter("crm_deals_closed_total", "Deals closed", ["outcome"])
for _outcome in ("won", "lost"):
    DEALS_CLOSED.labels(_outcome)
# A move between stages, or a close into the won or lost stage, per pipeline id.
STAGE_CHANGES = Counter("crm_deals_stage_changes_total", "Deals that entered another stage", ["pipeline"])
STAGE_CHANGES.labels("default")
# Closes by the open stage the deal left: won / all of a stage is its win rate (a PromQL ratio).
# Labels are pipeline and stage ids (bounded by the company's pipelines, never per deal); every open
# stage starts at 0 for both outcomes when the metrics refresh first sees it.
CLOSED_FROM_STAGE = Counter(
    "crm_deals_closed_from_stage_total",
    "Deals closed, by the open stage they left and the outcome",
    ["pipeline", "stage", "outcome"],
)
# Currencies every open stage exports a value for from 0 (the price lists' currencies, issue 15);
# any other currency a deal carries appears when it does.
VALUE_CURRENCIES = ("ILS", "IRR", "USD", "EUR")


@dataclass
class _StageValue:
    deals: int = 0
    # currency → (amount, weighted amount), minor units
    amounts: dict[str, tuple[int, int]] = field(default_factory=dict)


class OpenPipelineValue(Collector):
    """Open deals, their amounts and weighted amounts per pipeline, stage and currency, as the last
    periodic refresh read them (crm_sales.commands.refresh_pipeline_metrics): a scrape reads memory,
    never the database. Every replica exports the same figures: dashboards take max, not sum."""

    def __init__(self) -> None:
        self._stages: dict[tuple[str, str], _StageValue] = {}

    def publish(self, open_stages: Iterable[tuple[str, str]], values: Iterable[Any]) -> None:
        """Replace the figures: `open_stages` (pipeline, stage) start at 0; `values` are rows of
        (pipeline_id, stage_id, currency_code, deals, amount, probability) from queries.open_value."""
        stages = {
            (pipeline, stage): _StageValue(amounts=dict.fromkeys(VALUE_CURRENCIES, (0, 0)))
            for pipeline, stage in open_stages
        }
        for row in values:
            stage = stages.setdefault((row.pipeline_id, row.stage_id), _StageValue())
            stage.deals += int(row.deals)
            if row.currency_code:
                amount = int(row.amount)
                stage.amounts[row.currency_code] = (amount, weighted_minor(amount * row.probability))
        self._stages = stages  # one assignment: a scrape sees the old figures or the new, whole

    def collect(self) -> Iterator[Metric]:
        deals = GaugeMetricFamily("crm_deals_open", "Open deals per stage", labels=["pipeline", "stage"])
        labels = ["pipeline", "stage", "currency_code"]
        amount = GaugeMetricFamily(
            "crm_deals_open_amount_minor", "Amounts of open deals in minor units (pipeline value)", labels=labels
        )
        weighted = GaugeMetricFamily(
            "crm_deals_open_weighted_amount_minor",
            "Amounts of open deals x their stage's probability, in minor units (weighted pipeline)",
            labels=labels,
        )
        for (pipeline, stage), value in self._stages.items():
            deals.add_metric([pipeline, stage], value.deals)
            for currency, (total, weighted_total) in value.amounts.items():
                amount.add_metric([pipeline, stage, currency], total)
                weighted.add_metric([pipeline, stage, currency], weighted_total)
        yield from (deals, amount, weighted)


OPEN_PIPELINE_VALUE = OpenPipelineValue()
REGISTRY.register(OPEN_PIPELINE_VALUE)
