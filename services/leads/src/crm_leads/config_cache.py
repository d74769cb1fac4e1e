"""What captures read of the catalogue and the routing set-up (active sources, campaigns by the
reference a capture names, routing rules, teams' reps), kept in process per database and keyed by
the capture configuration version (table capture_config_version, migration 0015). No I/O here: the
queries modules fill it.

Why a replica never routes with stale rules, reps or capacities: triggers bump the version in the
very transaction that writes any of those tables, and every capture reads the version in its first
statement. What is cached under version V was read after some capture saw V, so it is at least as
new as V; a capture that sees any other version starts from an empty cache. There is no
time-to-live: the first capture that starts after another replica's change committed sees it.
(Open-lead counts are never cached: a cap is checked under the reps' row locks as before.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from crm_kit.db import Database

# Campaign references kept per version (a client may spell a name many ways): past this, forget them.
MAX_CAMPAIGN_KEYS = 10_000


@dataclass(eq=False)
class CaptureConfig:
    """The cached reads of one configuration version; version None: an unknown version, kept by nobody."""

    version: int | None
    # Every source code → whether it is active.
    sources: dict[str, bool] | None = None
    # (source, campaign as sent, stripped) → the campaign it names under that source.
    campaigns: dict[tuple[str, str], Any] = field(default_factory=dict)
    # The routing rules (crm_leads.routing.domain.RoutingRule), as stored.
    rules: tuple[Any, ...] | None = None
    # (team id, named rep id or "") → that team's reps (or the one rep) as routing candidates
    # (crm_leads.routing.availability.Candidate) without open-lead counts.
    reps: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)

    def remember_campaign(self, key: tuple[str, str], ref: Any) -> None:
        if len(self.campaigns) >= MAX_CAMPAIGN_KEYS:
            self.campaigns.clear()
        self.campaigns[key] = ref


_BY_DATABASE: WeakKeyDictionary[Database, CaptureConfig] = WeakKeyDictionary()


def config_at(db: Database, version: int | None) -> CaptureConfig:
    """The cache of db's configuration at version (emptied when the version changed); a throwaway
    one, filled by nobody else, when the version is unknown."""
    if version is None:
        return CaptureConfig(version=None)
    cache = _BY_DATABASE.get(db)
    if cache is None or cache.version != version:
        cache = CaptureConfig(version=version)
        _BY_DATABASE[db] = cache
    return cache
