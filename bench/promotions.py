"""Promotions at scale (issue 19's measure): the time to send a promotion to N recipients by SMS and
by e-mail to the local sinks (the fake SMS provider, the SMTP sink), messages per second, CPU per
message in every process, and the notifications process's memory through the run.

Seeds N customers straight into the customers database (``generate_series``: consent to advertising
by SMS and e-mail, a third Persian, a tag of their own), then as marketing creates the promotion and
schedules it, and as a sales manager approves it (N is above the approval threshold), and polls
``GET /promotions/{id}`` until it is completed. Everything a real send does happens: the audience
resolved page by page over gRPC, batches recorded and sent, each SMS's delivery receipt signed back
through the gateway, NotificationSent to the customers' timelines and reporting. CPU is read per
process from /proc for the send (approve → completed) and again once the stack is quiet (the
receipts and the timelines catch up after the last send). Reported, never asserted. Alone:

    uv run --frozen python bench/promotions.py [--tiny | --full]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:  # sibling modules, whether run as a script or loaded by run.py
    sys.path.insert(0, str(BENCH))

import cpu  # noqa: E402
from loadgen import session  # noqa: E402

from crm_devstack.stack import Ports, Stack  # noqa: E402

# (SMS recipients, e-mail recipients) per mode; the issue asks 100k of each.
SIZES = {"tiny": (300, 100), "short": (20_000, 5_000), "full": (100_000, 100_000)}
TAG = "bench-promotion"
# What the bench's stack runs promotions with: as fast as the local sinks take them.
STACK_ENV = {
    "CRM_PROMOTION_RATE_PER_SECOND": "5000",
    "CRM_PROMOTION_BATCH_SIZE": "500",
    "CRM_PROMOTION_CONCURRENCY": "16",
    "CRM_PROMOTION_POLL_SECONDS": "0.2",
}
SMS_TEXT = "פרסומת: {name}, מבצע ספות עד {date}! {advertiser} {advertiser_contact}. להסרה השיבו הסר"
FA_TEXT = "פרסומת: {name} عزیز، تخفیف تا {date}. {advertiser} {advertiser_contact}. STOP"
EMAIL_SUBJECT = "פרסומת: מבצע ספות"
EMAIL_TEXT = "שלום {name},\n\nמבצע ספות עד {date:long}.\n{advertiser} {advertiser_contact}\n\nלהסרה: {unsubscribe_link}"


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


async def seed(dsn: str, count: int) -> dict[str, Any]:
    """count customers who consented to advertising by SMS and e-mail (a third Persian)."""
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """
            INSERT INTO customers (id, full_name, phone_number, email, locale, marketing_sms_consent,
                                   marketing_email_consent, tags, created_at)
            SELECT 'bench-c-' || lpad(i::text, 7, '0'), 'לקוח ' || i, '+97258' || lpad(i::text, 7, '0'),
                   'c' || i || '@bench.example', CASE WHEN i % 3 = 0 THEN 'fa-IR' ELSE 'he-IL' END,
                   true, true, ARRAY[$2], now()
            FROM generate_series(1, $1) AS i
            ON CONFLICT (id) DO NOTHING
            """,
            count,
            TAG,
        )
        await conn.execute("VACUUM ANALYZE customers")
    finally:
        await conn.close()
    return {"customers": count, "seconds": round(time.perf_counter() - started, 1)}


def rss_mb(pid: int) -> float:
    """Resident memory of a process (MB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def quiet(stack: Stack, limit_s: float = 120.0) -> float:
    """Wait until the stack spends under a tenth of a core for two seconds running; seconds waited."""
    started = time.perf_counter()
    calm = 0
    while time.perf_counter() - started < limit_s and calm < 2:
        before = cpu.snapshot(stack)
        await asyncio.sleep(1)
        spent = sum(cpu.snapshot(stack).values()) - sum(before.values())
        calm = calm + 1 if spent < 0.1 else 0
    return round(time.perf_counter() - started, 1)


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    async with http.post(url, json=body, headers=headers) as response:
        answer = await response.json()
        if response.status >= 400:
            raise RuntimeError(f"{url}: {response.status} {answer}")
        return answer


async def send(stack: Stack, http: aiohttp.ClientSession, channel: str, size: int) -> dict[str, Any]:
    """One promotion to `size` recipients on `channel`, timed from approval to completion."""
    base = f"{stack.gateway_url}/api/v1"
    marketing = stack.auth_headers("marketing", ttl_seconds=3600)
    manager = stack.auth_headers("sales_manager", subject="manager-bench", team_id="team-media", ttl_seconds=3600)
    texts = (
        [{"locale": "he-IL", "body": SMS_TEXT}, {"locale": "fa-IR", "body": FA_TEXT}]
        if channel == "sms"
        else [{"locale": "he-IL", "subject": EMAIL_SUBJECT, "body": EMAIL_TEXT}]
    )
    body = {"name": f"bench {channel}", "channel": channel, "audience": {"tags": [TAG]}, "texts": texts}
    promotion = await _post(
        http, f"{base}/promotions", {**body, "sms_part_price_minor": 8, "currency_code": "ILS"}, marketing
    )
    estimate = await time_estimate(http, f"{base}/promotions/{promotion['id']}/estimate", marketing)
    scheduled = await _post(http, f"{base}/promotions/{promotion['id']}/schedule", {}, marketing)
    if scheduled["promotion"]["status"] == "awaiting_approval":
        await _post(http, f"{base}/promotions/{promotion['id']}/approve", {}, manager)
    pid = stack.processes["notifications"].pid
    memory: list[float] = []
    before, started = cpu.snapshot(stack), time.perf_counter()
    while True:
        await asyncio.sleep(0.5)
        memory.append(rss_mb(pid))
        async with http.get(f"{base}/promotions/{promotion['id']}", headers=marketing) as response:
            current = await response.json()
        if current["status"] == "completed":
            break
    elapsed = time.perf_counter() - started
    during = cpu.per_item(before, cpu.snapshot(stack), size)
    waited = await quiet(stack)
    total = cpu.per_item(before, cpu.snapshot(stack), size)
    async with http.get(f"{base}/promotions/{promotion['id']}/report", headers=marketing) as response:
        report = (await response.json())["total"]
    estimate["matches_report"] = (estimate["sms_parts"], estimate["cost_minor"]) == (
        report["sms_parts"],
        report["cost_minor"],
    )
    return {
        "recipients": size,
        "estimate": estimate,
        "seconds": round(elapsed, 1),
        "messages_per_s": round(size / elapsed, 1),
        "sent": report["sent"],
        "delivered": report["delivered"],
        "cpu_ms_per_message_while_sending": during,
        "cpu_ms_per_message_until_quiet": {**total, "quiet_after_s": waited},
        "notifications_rss_mb": {
            "first": memory[0] if memory else None,
            "max": max(memory, default=None),
            "last": memory[-1] if memory else None,
            "samples": len(memory),
        },
    }


async def time_estimate(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], rounds: int = 5
) -> dict[str, Any]:
    """The draft's estimated cost (customers' count per locale with a sample, each sampled message
    rendered), asked `rounds` times: each answer's milliseconds and what it said."""
    timings, answer = [], {}
    for _ in range(rounds):
        started = time.perf_counter()
        async with http.get(url, headers=headers) as response:
            answer = await response.json()
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status} {answer}")
        timings.append((time.perf_counter() - started) * 1000)
    ordered = sorted(timings)
    return {
        "ms": [round(t, 1) for t in timings],
        "median_ms": round(ordered[len(ordered) // 2], 1),
        "max_ms": round(ordered[-1], 1),
        "reachable": answer["reachable"],
        "sms_parts": answer["sms_parts"],
        "cost_minor": answer["cost_minor"],
    }


async def upload_list(stack: Stack, http: aiohttp.ClientSession, size: int, rounds: int = 3) -> dict[str, Any]:
    """A CSV audience list of every seeded customer's number, typed the local way (058-…), uploaded
    `rounds` times: the seconds of each (gateway → customers' ImportAudienceList, matched in one
    statement) and the customers process's CPU per line."""
    lines = "".join(f"058-{i:07d}\n" for i in range(1, size + 1))
    content = ("phone_number\n" + lines).encode()
    headers = {**stack.auth_headers("marketing", ttl_seconds=3600), "Content-Type": "text/csv"}
    timings, members = [], 0
    before = cpu.snapshot(stack)
    for round_number in range(rounds):
        started = time.perf_counter()
        async with http.post(
            f"{stack.gateway_url}/api/v1/audience-lists",
            params={"name": f"bench list {round_number}"},
            data=content,
            headers=headers,
        ) as response:
            answer = await response.json()
            if response.status != 201:
                raise RuntimeError(f"audience list: {response.status} {answer}")
        timings.append(time.perf_counter() - started)
        members = answer["members"]
    spent = cpu.per_item(before, cpu.snapshot(stack), size * rounds)
    return {
        "lines": size,
        "bytes": len(content),
        "members": members,
        "seconds": [round(t, 2) for t in timings],
        "median_seconds": round(sorted(timings)[len(timings) // 2], 2),
        "lines_per_s": round(size / sorted(timings)[len(timings) // 2]),
        "cpu_ms_per_line": spent,
    }


async def run(stack: Stack, http: aiohttp.ClientSession, mode: str) -> dict[str, Any]:
    """Seed, then the SMS promotion to every seeded customer and the e-mail one to the first part."""
    sms_size, email_size = SIZES[mode]
    result: dict[str, Any] = {}
    say(f"promotions: seeding {sms_size:,} customers")
    result["seed"] = await seed(stack.postgres.dsn("customers"), sms_size)
    await quiet(stack)
    say(f"promotions: a CSV list of {sms_size:,} numbers, three times")
    result["audience_list"] = await upload_list(stack, http, sms_size)
    await quiet(stack)
    say(f"promotions: an SMS promotion to {sms_size:,}")
    result["sms"] = await send(stack, http, "sms", sms_size)
    conn = await asyncpg.connect(stack.postgres.dsn("customers"))
    try:
        # The e-mail promotion reaches the first email_size of them: the others withdraw e-mail.
        await conn.execute(
            "UPDATE customers SET marketing_email_consent = false WHERE tags @> ARRAY[$1]::varchar[] AND id > $2",
            TAG,
            f"bench-c-{email_size:07d}",
        )
    finally:
        await conn.close()
    say(f"promotions: an e-mail promotion to {email_size:,}")
    result["email"] = await send(stack, http, "email", email_size)
    return result


async def alone(mode: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="crm-bench-promotions-") as tmp:
        env = {"CRM_RATE_LIMIT_PER_MINUTE": "60000000", "CRM_RATE_LIMIT_BURST": "1000000", **STACK_ENV}
        stack = Stack(Path(tmp), Ports.free(), extra_env=env)
        await stack.start()
        try:
            async with session(headers=stack.auth_headers("admin", ttl_seconds=3600)) as http:
                return await run(stack, http, mode)
        finally:
            await stack.stop()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args(argv)
    mode = "tiny" if args.tiny else "full" if args.full else "short"
    result = asyncio.run(alone(mode))
    result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["mode"] = mode
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return result


if __name__ == "__main__":
    main()
