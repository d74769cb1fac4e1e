"""The customer search page and the header's search box, against a fake gateway."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import as_role

pytestmark = pytest.mark.unit

DANA = {
    "id": "c1",
    "full_name": "דנה כהן",
    "phone_number": "+972501234567",
    "email": "dana@example.com",
    "locale": "he-IL",
    "lead_ids": ["lead-1"],
    "create_time": "2026-12-06T08:00:00Z",
}


class FakeGateway:
    def __init__(self) -> None:
        self.queries: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/api/v1/search/customers":
            return httpx.Response(404, json={"title": "Not Found"})
        query = request.url.params["query"]
        self.queries.append(query)
        if query == "x":
            problem = {"status": 422, "detail": "invalid", "errors": [{"field": "query", "detail": "at least 2"}]}
            return httpx.Response(422, json=problem, headers={"content-type": "application/problem+json"})
        matches: list[dict[str, Any]] = [{"customer": DANA, "match": "name_sounds_like"}] if query == "dana" else []
        return httpx.Response(200, json={"matches": matches})


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


async def test_a_match_links_to_the_customer_and_says_how_it_matched(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "service_agent")
    page = await browser.get("/search", params={"query": "  dana "})
    assert page.status_code == 200
    assert fake.queries == ["dana"]
    assert '<a href="/customers/c1">דנה כהן</a>' in page.text
    assert '<bdi dir="ltr">+972501234567</bdi>' in page.text
    assert "כתיב אחר" in page.text  # "another spelling"


async def test_no_match_says_so_and_a_short_query_shows_the_error_on_the_field(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "sales_rep", locale="en")
    empty = await browser.get("/search", params={"query": "nobody"})
    assert "No customer matches." in empty.text
    short = await browser.get("/search", params={"query": "x"})
    assert short.status_code == 422
    assert 'aria-invalid="true"' in short.text and "at least 2" in short.text
    # An empty box asks nothing of the gateway.
    await browser.get("/search")
    assert fake.queries == ["nobody", "x"]


@pytest.mark.parametrize(("role", "has_box"), [("service_agent", True), ("orders_clerk", True), ("marketing", False)])
async def test_the_header_search_box_is_for_the_roles_that_may_search(
    browser: httpx.AsyncClient, role: str, has_box: bool
) -> None:
    as_role(browser, role)
    page = await browser.get("/search")
    assert ('class="top-search"' in page.text) is has_box
