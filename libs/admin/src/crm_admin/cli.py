"""crm-admin: the operator's command line.

    crm-admin dlq list   --service orders [--consumer orders-deal-closed] [--all] [--address host:port]
    crm-admin dlq show   ID --service orders
    crm-admin dlq replay ID --service orders
    crm-admin audit list --service orders [--record-type order] [--record-id ID] [--actor alice] [--limit 50]

Every backend service serves `crm.admin.v1.DeadLetterService` and `crm.admin.v1.AuditService` on
its own gRPC port; the address defaults to the service's `CRM_<SERVICE>_ADDR` setting (the ports
`make run` uses), TLS to `CRM_GRPC_TLS_*` (plaintext when unset). Calls act as
`operator:<login name>` (or `CRM_ADMIN_ACTOR`), so a replay's audit record names who ran it.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import grpc

from crm.admin.v1 import admin_pb2, admin_pb2_grpc, audit_pb2, audit_pb2_grpc
from crm_admin import token
from crm_kit import caller
from crm_kit.grpc_client import channel
from crm_kit.protoconv import from_timestamp
from crm_kit.settings import ServiceSettings

SERVICES = ("leads", "sales", "customers", "orders", "support", "notifications", "reporting")
# Status codes an operator can act on: a message and exit code 1 instead of a traceback.
EXPECTED_ERRORS = {
    grpc.StatusCode.NOT_FOUND: "not found",
    grpc.StatusCode.FAILED_PRECONDITION: "refused",
    grpc.StatusCode.UNAVAILABLE: "unavailable",
    grpc.StatusCode.INVALID_ARGUMENT: "invalid argument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "timed out",
}
PAYLOAD_PREVIEW_BYTES = 64
ERROR_WIDTH = 60
DETAILS_WIDTH = 80
ACTOR_ENV = "CRM_ADMIN_ACTOR"


def default_address(service: str) -> str:
    """The service's address from CRM_<SERVICE>_ADDR, else the `make run` default."""
    settings = ServiceSettings(service_name="crm-admin")
    return str(getattr(settings, f"{service}_addr"))


def operator() -> str:
    """Who runs this command, as the audit log names them."""
    if os.environ.get(ACTOR_ENV):
        return os.environ[ACTOR_ENV]
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "operator"


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="crm-admin", description="Operate a running CRM.")
    groups = root.add_subparsers(dest="group", required=True)
    dlq = groups.add_parser("dlq", help="dead letters: events a service's consumers gave up on")
    commands = dlq.add_subparsers(dest="command", required=True)

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("--service", required=True, choices=SERVICES, help="the service whose dead letters")
        p.add_argument("--address", help="host:port of its gRPC server (default: CRM_<SERVICE>_ADDR)")

    listing = commands.add_parser("list", help="list dead letters, newest first")
    target(listing)
    listing.add_argument("--consumer", default="", help="only this consumer (per event type), e.g. orders-deal-closed")
    listing.add_argument("--all", action="store_true", help="include replayed dead letters")
    show = commands.add_parser("show", help="show one dead letter in full")
    show.add_argument("id", type=int)
    target(show)
    replay = commands.add_parser("replay", help="republish a dead letter to its subject (same ce-id)")
    replay.add_argument("id", type=int)
    target(replay)

    audit = groups.add_parser("audit", help="audit log: who changed what in a service")
    audit_commands = audit.add_subparsers(dest="command", required=True)
    audit_list = audit_commands.add_parser("list", help="list audit records, newest first")
    target(audit_list)
    audit_list.add_argument("--record-type", default="", help="only records of this kind, e.g. order")
    audit_list.add_argument("--record-id", default="", help="only this record's changes")
    audit_list.add_argument("--actor", default="", help="only changes by this actor, e.g. system")
    audit_list.add_argument("--limit", type=positive_int, default=50, help="at most this many records (default 50)")
    token.add_parser(groups)
    return root


def age(created: datetime | None, now: datetime) -> str:
    if created is None:
        return "-"
    seconds = max(0, int((now - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def first_line(text: str, width: int = ERROR_WIDTH) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def format_table(letters: Sequence[admin_pb2.DeadLetter], now: datetime) -> str:
    header = ("ID", "CONSUMER", "SUBJECT", "EVENT ID", "DELIVERIES", "AGE", "ERROR")
    rows = [
        (
            str(d.id) + (" (replayed)" if d.HasField("replay_time") else ""),
            d.consumer,
            d.subject,
            d.event_id or "-",
            str(d.deliveries),
            age(from_timestamp(d.create_time, d.HasField("create_time")), now),
            first_line(d.error),
        )
        for d in letters
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip() for r in [header, *rows]
    ]
    return "\n".join(lines)


def format_audit_table(records: Sequence[audit_pb2.AuditRecord]) -> str:
    header = ("ID", "TIME", "ACTOR", "ACTION", "RECORD", "REQUEST ID", "DETAILS")
    rows = []
    for r in records:
        created = from_timestamp(r.create_time, r.HasField("create_time"))
        rows.append(
            (
                str(r.id),
                created.isoformat(timespec="seconds") if created else "-",
                r.actor,
                r.action,
                f"{r.record_type}/{r.record_id}",
                r.request_id or "-",
                first_line(r.details_json, DETAILS_WIDTH),
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip() for r in [header, *rows]
    ]
    return "\n".join(lines)


async def list_audit(ch: grpc.aio.Channel, options: argparse.Namespace) -> None:
    stub = audit_pb2_grpc.AuditServiceStub(ch)
    records: list[audit_pb2.AuditRecord] = []
    token = ""
    while len(records) < options.limit:
        page = await stub.ListAuditRecords(
            audit_pb2.ListAuditRecordsRequest(
                page_size=min(100, options.limit - len(records)),
                page_token=token,
                record_type=options.record_type,
                record_id=options.record_id,
                actor=options.actor,
            )
        )
        records += page.audit_records
        token = page.next_page_token
        if not token:
            break
    if not records:
        print(f"no audit records in {options.service}")
    else:
        print(format_audit_table(records))
        if token:
            print(f"(newest {len(records)} shown; --limit for more)")


def hex_preview(payload: bytes, limit: int = PAYLOAD_PREVIEW_BYTES) -> str:
    shown = payload[:limit]
    lines = [f"  {i:04x}  {shown[i : i + 16].hex(' ')}" for i in range(0, len(shown), 16)]
    if len(payload) > limit:
        lines.append(f"  … {len(payload) - limit} more bytes")
    return "\n".join(lines) if lines else "  (empty)"


def format_detail(d: admin_pb2.DeadLetter, now: datetime) -> str:
    created = from_timestamp(d.create_time, d.HasField("create_time"))
    replayed = from_timestamp(d.replay_time, d.HasField("replay_time"))
    lines = [
        f"dead letter {d.id}",
        f"  consumer:   {d.consumer}",
        f"  subject:    {d.subject}",
        f"  event id:   {d.event_id or '-'}",
        f"  deliveries: {d.deliveries}",
        f"  created:    {created.isoformat() if created else '-'} ({age(created, now)} ago)",
        f"  replayed:   {replayed.isoformat() if replayed else 'no'}",
        "headers:",
        *(f"  {k}: {v}" for k, v in sorted(d.headers.items())),
        f"payload: {len(d.payload)} bytes",
        hex_preview(d.payload),
        "error:",
        *(f"  {line}" for line in (d.error.splitlines() or [""])),
    ]
    return "\n".join(lines)


async def run(options: argparse.Namespace) -> int:
    address = options.address or default_address(options.service)
    now = datetime.now(UTC)
    tls = ServiceSettings(service_name="crm-admin").grpc_tls()
    with caller.acting_as(operator(), f"crm-admin-{uuid.uuid4().hex}"):
        async with channel(address, default_timeout=10.0, tls=tls) as ch:
            if options.group == "audit":
                await list_audit(ch, options)
            else:
                await dead_letters(ch, options, now)
    return 0


async def dead_letters(ch: grpc.aio.Channel, options: argparse.Namespace, now: datetime) -> None:
    stub = admin_pb2_grpc.DeadLetterServiceStub(ch)
    if options.command == "list":
        letters: list[admin_pb2.DeadLetter] = []
        token = ""
        while True:
            page = await stub.ListDeadLetters(
                admin_pb2.ListDeadLettersRequest(
                    page_size=100, page_token=token, consumer=options.consumer, include_replayed=options.all
                )
            )
            letters += page.dead_letters
            token = page.next_page_token
            if not token:
                break
        if not letters:
            print(f"no dead letters in {options.service}")
        else:
            print(format_table(letters, now))
    elif options.command == "show":
        got = await stub.GetDeadLetter(admin_pb2.GetDeadLetterRequest(dead_letter_id=options.id))
        print(format_detail(got.dead_letter, now))
    else:
        done = await stub.ReplayDeadLetter(admin_pb2.ReplayDeadLetterRequest(dead_letter_id=options.id))
        d = done.dead_letter
        print(f"replayed dead letter {d.id} of {d.consumer}: event {d.event_id or '-'} ({d.subject}) sent to it again")


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if options.group == "token":
        return int(options.handler(options))
    try:
        return asyncio.run(run(options))
    except grpc.aio.AioRpcError as exc:
        what = EXPECTED_ERRORS.get(exc.code())
        if what is None:
            raise
        target = f"{options.service} at {options.address or default_address(options.service)}"
        print(f"crm-admin: {what} ({exc.code().name}) from {target}: {exc.details()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
