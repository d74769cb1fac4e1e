"""Route templates for labels and logs: "/api/v1/leads/{lead_id}", never the raw path."""

from __future__ import annotations

from starlette.routing import Match, Route
from starlette.types import Scope

# Requests that matched no route share one label, so scanners cannot explode the series count.
UNMATCHED_ROUTE = "unmatched"


def route_template(scope: Scope) -> str:
    """The template of the route the router matched ("/api/v1/leads/{lead_id}"), not the raw path."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str) and path:
        return path
    # API routes put themselves in the scope; plain routes (/docs, /openapi.json) do not.
    for route in getattr(scope.get("router"), "routes", ()):
        if isinstance(route, Route) and route.matches(scope)[0] is Match.FULL:
            return route.path
    return UNMATCHED_ROUTE
