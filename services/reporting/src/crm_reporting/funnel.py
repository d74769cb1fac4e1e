"""The funnel and the speed-to-lead curve (issue 20). Pure: the store counts, this module names and
assembles.

- **Speed to lead**: a lead's time from capture to a rep's first response (a logged call, e-mail or
  meeting that stopped the lead's clock) in bands a sales manager reads — under 5 minutes, 5 to 30,
  30 minutes to 2 hours, 2 to 24 hours, over a day — and the leads never answered. Per band the
  win rate among decided leads (won: a deal won; lost: every closed deal lost), so the curve says
  what answering faster is worth.
- **Funnel**: the deals of a pipeline opened in a period, and per stage, in the pipeline's order,
  how many *reached* it — entered it or any later stage (a deal may skip one) — so each stage's
  count is at most the one before and conversion from stage to stage reads straight off.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from crm_kit.errors import InvalidArgument

# Upper bounds in seconds of each band but the last (width_bucket's thresholds, in order).
SPEED_THRESHOLDS = (300, 1800, 7200, 86400)
SPEED_BANDS = ("under_5_minutes", "5_to_30_minutes", "30_minutes_to_2_hours", "2_to_24_hours", "over_a_day")
NO_RESPONSE = "no_response"
FUNNEL_DIMENSIONS = ("", "source", "campaign", "rep")
# A pipeline has at most 50 stages (sales' rule): all of them fit.
MAX_STAGES = 50


@dataclass(frozen=True)
class Band:
    band: str
    leads: int
    won: int
    lost: int
    median_seconds: float

    @property
    def win_rate(self) -> float | None:
        decided = self.won + self.lost
        return self.won / decided if decided else None


def speed_bands(counted: Mapping[int, tuple[int, int, int, float]]) -> list[Band]:
    """Every band in order (empty ones too, so the curve has all its points) from the store's
    counts by band index (width_bucket's 0-4; -1: never answered): (leads, won, lost, median)."""
    names = [*SPEED_BANDS, NO_RESPONSE]
    indexes = [*range(len(SPEED_BANDS)), -1]
    return [Band(name, *counted.get(index, (0, 0, 0, 0.0))) for name, index in zip(names, indexes, strict=True)]


def check_funnel(stage_ids: Sequence[str], dimension: str) -> None:
    problems = []
    if not 1 <= len(stage_ids) <= MAX_STAGES or len(set(stage_ids)) != len(stage_ids) or not all(stage_ids):
        problems.append(("stage_ids", f"1 to {MAX_STAGES} different stage ids"))
    if dimension not in FUNNEL_DIMENSIONS:
        problems.append(("dimension", "one of source, campaign, rep or empty"))
    if problems:
        raise InvalidArgument(
            "the funnel cannot be counted: " + ", ".join(p for p, _ in problems), field_violations=problems
        )


@dataclass(frozen=True)
class FunnelRow:
    group: str
    reached: tuple[int, ...]


def funnel(furthest: Iterable[tuple[str, int, int]], stages: int) -> tuple[list[FunnelRow], FunnelRow]:
    """Rows per group and the total from (group, furthest stage reached — 1-based, 1 is the first
    stage every opened deal is in —, deals): a deal counts in every stage up to its furthest.
    Groups by their first-stage deals, largest first."""
    counts: dict[str, list[int]] = {}
    for group, last, deals in furthest:
        reached = counts.setdefault(group, [0] * stages)
        for index in range(min(max(last, 1), stages)):
            reached[index] += deals
    rows = sorted((FunnelRow(g, tuple(r)) for g, r in counts.items()), key=lambda r: (-r.reached[0], r.group))
    total = [sum(r.reached[i] for r in rows) for i in range(stages)]
    return rows, FunnelRow("", tuple(total))
