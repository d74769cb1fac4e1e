"""The console as a user feels it (issue 17): first screen, list pages and a 1,000-card board.

Starts its own stack, seeds 200 leads for the demo rep and 1,000 deals in one pipeline stage
through the gateway, signs in with the distribution's headless Chromium (Playwright), and reports:

- **first screen, cold cache**: a new browser context per sample (no cache, no cookies but the
  session), the work list's Navigation Timing: first byte, DOM interactive, load end;
- **list pages, server side**: the console's answer time for the work list, the orders list and
  the board (HTML ready, every gateway call included), 1 client closed loop, then 8;
- **the 1,000-card board**: loading every card through the columns' "more" (time to all cards in
  the DOM), scrolling the column to its end (frames over 50 ms while scrolling, from the browser's
  long-animation-frame/longtask entries), and a drag of a card to the next stage until the move
  is confirmed by the sales service.

Figures are reported, never asserted:  uv run --frozen python bench/console.py [--tiny]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from loadgen import latency_summary  # noqa: E402

from crm_devstack.stack import Ports, Stack  # noqa: E402


def say(message: str) -> None:
    print(f"[bench-console {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


async def seed(stack: Stack, leads: int, deals: int) -> dict[str, Any]:
    """``leads`` open leads for rep-dana and ``deals`` open deals in the default pipeline's first stage."""
    headers = stack.auth_headers("admin", ttl_seconds=3600)
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, timeout=30, limits=limits) as api:
        gate = asyncio.Semaphore(16)

        async def capture(i: int, convert: bool) -> str:
            async with gate:
                phone = f"05{random.randint(0, 9)}{random.randint(1_000_000, 9_999_999)}"
                body = {"full_name": f"לקוח ספסל {i}", "phone_number": phone, "source": "website"}
                lead = (await api.post("/api/v1/leads", json=body)).json()
                if convert:
                    deal = (await api.post(f"/api/v1/leads/{lead['id']}/convert", json={})).json()
                    return str(deal["pipeline_id"])
                await api.post(f"/api/v1/leads/{lead['id']}/assign", json={"rep_id": "rep-dana"})
                return ""

        await asyncio.gather(*(capture(i, False) for i in range(leads)))
        pipelines = await asyncio.gather(*(capture(i, True) for i in range(deals)))
    return {"pipeline_id": next(p for p in pipelines if p), "leads": leads, "deals": deals}


async def sign_in(browser: Any, stack: Stack, role: str) -> Any:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    await page.goto(f"{stack.console_url}/")
    await page.get_by_role("button", name=f"({role})").first.click()
    await page.wait_for_url(f"{stack.console_url}/**")
    return context, page


NAVIGATION = """() => { const n = performance.getEntriesByType('navigation')[0];
  return {first_byte: n.responseStart, interactive: n.domInteractive, loaded: n.loadEventEnd}; }"""


async def first_screen(browser: Any, stack: Stack, samples: int) -> dict[str, Any]:
    context, page = await sign_in(browser, stack, "sales_rep")
    cookies = await context.cookies()
    await context.close()
    timings: dict[str, list[float]] = {"first_byte": [], "interactive": [], "loaded": []}
    for _ in range(samples):
        cold = await browser.new_context(viewport={"width": 1400, "height": 900})
        await cold.add_cookies(cookies)
        page = await cold.new_page()
        await page.goto(f"{stack.console_url}/work", wait_until="load")
        for key, value in (await page.evaluate(NAVIGATION)).items():
            timings[key].append(float(value))
        await cold.close()
    return {key: latency_summary(values) for key, values in timings.items()}


async def list_pages(
    stack: Stack, rep: list[dict[str, Any]], admin: list[dict[str, Any]], pipeline_id: str, n: int
) -> dict[str, Any]:
    """The rep's work list (their 200 leads) as the rep; the orders list and the board as admin."""
    pages = {
        "work": ("/work", rep),
        "orders": ("/orders", admin),
        "board": (f"/pipelines/{pipeline_id}/board", admin),
    }
    results: dict[str, Any] = {}
    for name, (path, cookies) in pages.items():
        jar = {cookie["name"]: cookie["value"] for cookie in cookies}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.ports.console}", cookies=jar, timeout=30) as c:
            for clients in (1, 8):
                times: list[float] = []

                async def one(path: str = path, times: list[float] = times, each: int = n // clients) -> None:
                    for _ in range(each):
                        started = time.perf_counter()
                        answer = await c.get(path)
                        assert answer.status_code == 200, (path, answer.status_code)
                        times.append((time.perf_counter() - started) * 1000)

                await asyncio.gather(*(one() for _ in range(clients)))
                results[f"{name}_c{clients}"] = latency_summary(times)
    return results


LONG_FRAMES = """() => new Promise(resolve => {
  const long = [];
  const observer = new PerformanceObserver(list => list.getEntries().forEach(e => long.push(e.duration)));
  observer.observe({type: 'longtask', buffered: false});
  const column = document.querySelector('.column');
  const started = performance.now();
  const step = () => {
    column.scrollTop += 400;
    if (column.scrollTop + column.clientHeight < column.scrollHeight - 1) { requestAnimationFrame(step); }
    else { setTimeout(() => { observer.disconnect();
      resolve({scroll_ms: performance.now() - started, long_tasks: long.length,
               longest_task_ms: Math.max(0, ...long)}); }, 200); }
  };
  requestAnimationFrame(step);
})"""


async def board(browser: Any, stack: Stack, pipeline_id: str, deals: int) -> dict[str, Any]:
    # As admin: every deal of the pipeline (a manager sees their team's).
    context, page = await sign_in(browser, stack, "admin")
    started = time.perf_counter()
    await page.goto(f"{stack.console_url}/pipelines/{pipeline_id}/board", wait_until="load")
    first_paint_ms = (time.perf_counter() - started) * 1000
    column = page.locator("section.column").first
    loads = 0
    started = time.perf_counter()
    while await column.locator("a[data-more]").count():
        before = await column.locator("li.card").count()
        await column.locator("a[data-more]").click()
        await page.wait_for_function(
            "([n]) => document.querySelector('section.column').querySelectorAll('li.card').length > n", arg=[before]
        )
        loads += 1
    all_cards_ms = (time.perf_counter() - started) * 1000
    cards = await column.locator("li.card").count()
    scroll = await page.evaluate(LONG_FRAMES)
    # A drag to the next stage, until the sales service has the move.
    card = column.locator("li.card").last
    deal_id = await card.get_attribute("data-deal")
    target = page.locator("section.column").nth(1)
    started = time.perf_counter()
    async with page.expect_response(lambda r: r.url.endswith(f"/deals/{deal_id}/stage")) as moved:
        await card.drag_to(target)
    confirmed = await moved.value
    drag_ms = (time.perf_counter() - started) * 1000
    await context.close()
    return {
        "deals": deals,
        "first_50_per_stage_loaded_ms": round(first_paint_ms, 1),
        "more_loads": loads,
        "cards_in_first_column": cards,
        "all_cards_loaded_ms": round(all_cards_ms, 1),
        "scroll_to_end": {k: round(float(v), 1) for k, v in scroll.items()},
        "drag_to_confirmed_ms": round(drag_ms, 1),
        "drag_status": confirmed.status,
    }


async def main(tiny: bool) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium")
    if not chromium:
        raise SystemExit("chromium is not installed (make install)")
    leads, deals, samples, requests = (20, 120, 3, 20) if tiny else (200, 1000, 20, 200)
    with tempfile.TemporaryDirectory(prefix="crm-bench-console-") as tmp:
        stack = Stack(
            Path(tmp),
            Ports.free(),
            extra_env={"CRM_RATE_LIMIT_PER_MINUTE": "60000000", "CRM_RATE_LIMIT_BURST": "1000000"},
        )
        say("starting the stack")
        await stack.start()
        try:
            say(f"seeding {leads} leads and {deals} deals")
            seeded = await seed(stack, leads, deals)
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                say("first screen")
                first = await first_screen(browser, stack, samples)
                sessions = {}
                for role in ("sales_rep", "admin"):
                    context, _ = await sign_in(browser, stack, role)
                    sessions[role] = await context.cookies()
                    await context.close()
                say("list pages")
                lists = await list_pages(
                    stack, sessions["sales_rep"], sessions["admin"], seeded["pipeline_id"], requests
                )
                say("the board")
                big_board = await board(browser, stack, seeded["pipeline_id"], deals)
                await browser.close()
        finally:
            await stack.stop()
    return {
        "date": datetime.now().isoformat(timespec="seconds"),
        "mode": "tiny" if tiny else "short",
        "seeded": seeded,
        "first_screen_work_list_ms": first,
        "list_pages_server_ms": lists,
        "board": big_board,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a quick smoke run")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = parser.parse_args()
    result = asyncio.run(main(args.tiny))
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
