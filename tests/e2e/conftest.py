"""The whole CRM as separate processes (the same launcher as `make run`), on free ports."""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_devstack.stack import Ports, Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = Path(tmp_path_factory.mktemp("crm-e2e"))
    # Every e2e client shares 127.0.0.1 and the fuzzing sends thousands of requests per role: widen
    # the per-principal limit and the per-address limit of requests without a valid token (unit
    # tests cover the limiters). The web form's limits stay at their defaults: they count per key,
    # each test has its own key, and a made-up key counts against nothing.
    system = Stack(
        state,
        Ports.free(),
        extra_env={
            "CRM_RATE_LIMIT_BURST": "100000",
            # Every access line, successful ones too: test_trace_logs reads them (crm_kit.logs).
            "CRM_ACCESS_LOG": "all",
            "CRM_ANONYMOUS_RATE_LIMIT_BURST": "100000",
            # Tests decide leads and ask for a score at once: the model retrains a second after
            # the last training instead of ten minutes (test_lead_scoring).
            "CRM_LEAD_SCORE_REFRESH_SECONDS": "1",
            # Likewise the cross-sell rules (test_cross_sell).
            "CRM_CROSS_SELL_REFRESH_SECONDS": "1",
        },
    )
    asyncio.run(system.start())
    try:
        yield system
    finally:
        asyncio.run(system.stop())


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway, as an admin (tests of other roles mint their own tokens)."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=stack.auth_headers()) as client:
        yield client


@pytest.fixture
async def sms(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.sms_url, timeout=15) as client:
        yield client


# ------------------------------------------------------------------ the console in a browser

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests/clients/node_modules/axe-core/axe.min.js"
ARTIFACTS = Path(os.environ.get("CRM_TEST_ARTIFACTS", ROOT / ".state/test-artifacts")) / "console"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """The distribution's Chromium, headless, through Playwright (never Playwright's own download)."""
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.fail("Chromium is not installed (make install runs scripts/system-packages.sh)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        await launched.close()


class ConsoleDriver:
    """What every console browser test does: a fresh page, sign-in at the development issuer,
    axe-core, and screenshots kept as artefacts ($CRM_TEST_ARTIFACTS, default .state/test-artifacts)."""

    def __init__(self, stack: Stack, browser: Any) -> None:
        self.stack = stack
        self.browser = browser

    async def page(self, width: int = 1280) -> Any:
        # The console's CSP allows its own scripts only; bypassing it lets the test inject axe-core.
        context = await self.browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
        return await context.new_page()

    async def sign_in(self, page: Any, role: str, path: str = "/") -> None:
        await page.goto(f"{self.stack.console_url}{path}")
        assert page.url.startswith(f"http://localhost:{self.stack.ports.gateway}/oauth/authorize")
        await page.get_by_role("button", name=re.compile(rf"\({role}\)")).click()
        await page.wait_for_url(re.compile(rf"^{re.escape(self.stack.console_url)}/"))

    async def no_serious_axe_violations(self, page: Any, screen: str) -> None:
        await page.add_script_tag(path=str(AXE))
        result = await page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        serious = [
            f"{v['id']}: {v['help']} ({len(v['nodes'])}×, e.g. {v['nodes'][0]['html'][:120]})"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == [], f"{screen}: {serious}"

    async def shot(self, page: Any, name: str) -> None:
        await asyncio.to_thread(ARTIFACTS.mkdir, parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    @staticmethod
    def menu_link(page: Any, name: str) -> Any:
        """The menu's entry called name, whether on the top line or folded in an area's menu."""
        return page.locator("header nav a", has_text=name)

    async def menu(self, page: Any, name: str) -> None:
        """Go to a menu entry as a user does: open its area's menu first when it is folded."""
        link = self.menu_link(page, name)
        if not await link.is_visible():
            folded = page.locator("header nav details", has=page.locator("a", has_text=name))
            await folded.locator("summary").click()
        await link.click()

    async def lead_for_dana(self, name: str, tasks: dict[str, str] | None = None) -> dict[str, Any]:
        """A new web-site lead given to the demo rep (rep-dana) by an admin, with tasks (subject: due)."""
        phone = f"05{random.randint(0, 9)}{random.randint(1_000_000, 9_999_999)}"
        headers = self.stack.auth_headers()
        async with httpx.AsyncClient(base_url=self.stack.gateway_url, headers=headers, timeout=15) as api:
            body = {"full_name": name, "phone_number": phone, "source": "website"}
            captured = await api.post("/api/v1/leads", json=body)
            assert captured.status_code == 201, captured.text
            lead: dict[str, Any] = captured.json()
            assigned = await api.post(f"/api/v1/leads/{lead['id']}/assign", json={"rep_id": "rep-dana"})
            assert assigned.status_code == 200, assigned.text
            for subject, due in (tasks or {}).items():
                task = {"kind": "task", "subject": subject, "due_time": due}
                logged = await api.post(f"/api/v1/leads/{lead['id']}/activities", json=task)
                assert logged.status_code == 201, logged.text
        return lead

    async def reload_until(self, page: Any, locator: Any, tries: int = 40) -> None:
        """Events make orders, messages and reports: reload until they show (no fixed sleep decides)."""
        for _ in range(tries):
            if await locator.count():
                return
            await asyncio.sleep(0.5)
            await page.reload()
        raise AssertionError(f"{locator} never appeared on {page.url}")


@pytest.fixture
def console(stack: Stack, browser: Any) -> ConsoleDriver:
    return ConsoleDriver(stack, browser)
