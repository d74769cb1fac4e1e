"""docs/architecture.md's "Where things are" table names every gateway route with the feature
package that serves it, so a newcomer goes from a URL to its code in one hop."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crm_gateway.app import ROUTERS

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit

# The one package named for a resource rather than a path segment: a web form, whose admin keys and
# public submissions belong together (issue 14).
GROUPED = {
    "web_form_keys": "web_forms",
    "web_form_submissions": "web_forms",
    "message_previews": "messages",
    # a promotion's audience before it exists, and its recipient's unsubscribe link
    "audience_previews": "promotions",
    "unsubscribe": "promotions",
    # a recipient's short tracked link and a tracked e-mail's open image, at the root
    "r": "promotions",
    "o": "promotions",
    # the report builder's saved reports, and their e-mail schedules
    "saved_reports": "reports",
    "report_schedules": "reports",
}
# A path parameter's convertor ("{quote_id:not_pdf}") is routing detail: the map names the parameter.
CONVERTOR = re.compile(r"\{(\w+):\w+\}")
ROW = re.compile(r"^\| `(?P<method>[A-Z]+) (?P<path>/\S*)` \| `(?P<package>\w+)/` \|", re.M)


def test_every_route_is_in_the_map_with_its_package() -> None:
    documented = {
        (m["method"], m["path"]): m["package"]
        for m in ROW.finditer((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"))
    }
    served = {
        (method, CONVERTOR.sub(r"{\1}", route.path.replace("/api/v1", "", 1))): route.endpoint.__module__.split(".")[-2]
        for router in ROUTERS
        for route in router.routes
        for method in sorted(route.methods)  # type: ignore[attr-defined]
    }
    assert documented == served


def test_each_package_is_named_after_its_paths_first_segment() -> None:
    for router in ROUTERS:
        for route in router.routes:
            package = route.endpoint.__module__.split(".")[-2]  # type: ignore[attr-defined]
            segments = [s for s in route.path.split("/") if s and not s.startswith("{")]  # type: ignore[attr-defined]
            named = {s.replace("-", "_") for s in segments if s not in ("api", "v1", "public")}
            named |= {GROUPED[n] for n in named if n in GROUPED}
            assert package in named, f"{route.path} is served by {package}/"  # type: ignore[attr-defined]
