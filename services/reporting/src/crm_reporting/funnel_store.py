"""Counts of the funnel and the speed-to-lead curve (crm_reporting.funnel assembles them): one
statement each, held to a rep's or a team's facts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text

from crm_kit.db import UnitOfWork
from crm_reporting import funnel

# Per band of time to first response (width_bucket over the thresholds: 0-4; -1 never answered):
# leads, won (a deal won), lost (deals closed, none won), median seconds. A lead's outcome is read
# through the deal index per lead, so the statement costs the period's leads, not every deal.
_SPEED = text(
    """
SELECT CASE WHEN l.first_response_at IS NULL THEN -1
            ELSE width_bucket(extract(epoch FROM l.first_response_at - l.captured_at)::float8,
                              CAST(:thresholds AS float8[])) END AS band,
       count(*) AS leads,
       count(*) FILTER (WHERE o.won) AS won,
       count(*) FILTER (WHERE o.won IS FALSE) AS lost,
       coalesce(percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM l.first_response_at - l.captured_at)), 0) AS median_seconds
FROM lead_facts l
LEFT JOIN LATERAL (SELECT bool_or(d.won) AS won FROM deal_facts d WHERE d.lead_id = l.lead_id) o ON true
WHERE l.captured_at IS NOT NULL
  AND (CAST(:start AS timestamptz) IS NULL OR l.captured_at >= :start)
  AND (CAST(:end AS timestamptz) IS NULL OR l.captured_at < :end)
  AND (CAST(:rep_id AS text) IS NULL OR l.owner_rep_id = :rep_id)
  AND (CAST(:team_id AS text) IS NULL OR l.owner_team_id = :team_id)
GROUP BY 1
"""
)

# Per group and furthest stage (1-based in :stages; a deal that entered none of them is in the
# first): deals of the pipeline opened in the period.
_FUNNEL = text(
    """
WITH opened AS (
    SELECT o.deal_id, o.lead_id, o.owner_rep_id
    FROM deal_stage_facts o
    WHERE o.stage_id = '' AND o.pipeline_id = :pipeline_id
      AND (CAST(:start AS timestamptz) IS NULL OR o.entered_at >= :start)
      AND (CAST(:end AS timestamptz) IS NULL OR o.entered_at < :end)
      AND (CAST(:rep_id AS text) IS NULL OR o.owner_rep_id = :rep_id)
      AND (CAST(:team_id AS text) IS NULL OR o.owner_team_id = :team_id)
),
furthest AS (
    SELECT d.deal_id, coalesce(max(array_position(CAST(:stages AS text[]), s.stage_id)), 1) AS last
    FROM opened d LEFT JOIN deal_stage_facts s ON s.deal_id = d.deal_id AND s.stage_id <> ''
    GROUP BY d.deal_id
)
SELECT CASE :dimension WHEN 'source' THEN coalesce(l.source, '')
                       WHEN 'campaign' THEN coalesce(l.campaign, '')
                       WHEN 'rep' THEN d.owner_rep_id
                       ELSE '' END AS grp,
       f.last, count(*) AS deals
FROM furthest f JOIN opened d ON d.deal_id = f.deal_id
LEFT JOIN lead_facts l ON l.lead_id = d.lead_id
GROUP BY 1, 2
"""
)


def _reach(rep_id: str, team_id: str) -> dict[str, str | None]:
    return {"rep_id": rep_id or None, "team_id": team_id or None}


async def speed_to_lead(
    uow: UnitOfWork, start: datetime | None, end: datetime | None, *, rep_id: str, team_id: str
) -> list[funnel.Band]:
    params = {"thresholds": list(funnel.SPEED_THRESHOLDS), "start": start, "end": end, **_reach(rep_id, team_id)}
    rows = await uow.conn.execute(_SPEED, params)
    return funnel.speed_bands({r.band: (r.leads, r.won, r.lost, float(r.median_seconds)) for r in rows})


async def funnel_counts(
    uow: UnitOfWork,
    pipeline_id: str,
    stage_ids: Sequence[str],
    start: datetime | None,
    end: datetime | None,
    *,
    dimension: str,
    rep_id: str,
    team_id: str,
) -> list[tuple[str, int, int]]:
    params = {
        "pipeline_id": pipeline_id,
        "stages": list(stage_ids),
        "start": start,
        "end": end,
        "dimension": dimension,
        **_reach(rep_id, team_id),
    }
    return [(r.grp, r.last, r.deals) for r in await uow.conn.execute(_FUNNEL, params)]
