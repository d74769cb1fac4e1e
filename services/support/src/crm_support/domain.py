"""Service desk rules: what a ticket may be, where it may go next, who gets it, which SLA target
applies. Pure, no I/O; the SLA clock itself is in crm_support.sla."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from crm_kit.errors import FailedPrecondition, InvalidArgument

MAX_SUBJECT = 200
MAX_DESCRIPTION = 10_000
MAX_MESSAGE = 10_000
MAX_NOTE = 2_000
MAX_ID = 64
MAX_SKU = 100
TIERS = ("standard", "gold", "vip")
SURVEY_SCORES = range(1, 6)
MAX_SURVEY_COMMENT = 1_000
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_FILENAME = 200
# Files a customer's case needs (photos, invoices, logs); nothing a browser would run.
ATTACHMENT_TYPES = ("image/png", "image/jpeg", "image/webp", "application/pdf", "text/plain")


class Kind(StrEnum):
    COMPLAINT = "complaint"
    QUESTION = "question"
    RETURN = "return"
    REPAIR = "repair"
    BILLING = "billing"
    TASK = "task"


class Channel(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    SMS = "sms"
    WEB_FORM = "web_form"
    WALK_IN = "walk_in"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Status(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING_CUSTOMER = "pending_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Visibility(StrEnum):
    PUBLIC_REPLY = "public_reply"
    INTERNAL_NOTE = "internal_note"
    CUSTOMER_MESSAGE = "customer_message"


class Strategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"


class Metric(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


OPEN_STATUSES = frozenset({Status.NEW, Status.OPEN, Status.PENDING_CUSTOMER})
# The clock stops while the ticket waits for the customer, with this reason on the ticket.
PAUSED = {Status.PENDING_CUSTOMER.value: "pending_customer"}
STOPPED = frozenset({Status.RESOLVED.value, Status.CLOSED.value})

# Where a ticket may go from each status. Closed is final: a customer who writes again after
# that gets a new ticket (its number quoted), as in every mature desk.
TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.NEW: frozenset({Status.OPEN, Status.PENDING_CUSTOMER, Status.RESOLVED}),
    Status.OPEN: frozenset({Status.PENDING_CUSTOMER, Status.RESOLVED}),
    Status.PENDING_CUSTOMER: frozenset({Status.OPEN, Status.RESOLVED}),
    Status.RESOLVED: frozenset({Status.OPEN, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}


@dataclass(frozen=True)
class NewTicket:
    customer_id: str
    order_id: str
    product_sku: str
    kind: Kind
    channel: Channel
    priority: Priority
    category_id: str
    subject: str
    description: str
    parent_ticket_id: str
    customer_tier: str
    assignee_id: str


def _text_problems(name: str, value: str, *, required: bool, limit: int) -> list[tuple[str, str]]:
    if required and not value.strip():
        return [(name, "is required")]
    if len(value) > limit:
        return [(name, f"must have at most {limit} characters")]
    return []


def new_ticket(
    *,
    customer_id: str,
    order_id: str,
    product_sku: str,
    kind: str,
    channel: str,
    priority: str,
    category_id: str,
    subject: str,
    description: str,
    parent_ticket_id: str,
    customer_tier: str,
    assignee_id: str,
) -> NewTicket:
    """A ticket as asked, or InvalidArgument naming every field that is wrong (all at once)."""
    problems = _text_problems("customer_id", customer_id, required=True, limit=MAX_ID)
    problems += _text_problems("category_id", category_id, required=True, limit=MAX_ID)
    problems += _text_problems("subject", subject, required=True, limit=MAX_SUBJECT)
    problems += _text_problems("description", description, required=False, limit=MAX_DESCRIPTION)
    problems += _text_problems("order_id", order_id, required=False, limit=MAX_ID)
    problems += _text_problems("product_sku", product_sku, required=False, limit=MAX_SKU)
    problems += _text_problems("parent_ticket_id", parent_ticket_id, required=False, limit=MAX_ID)
    problems += _text_problems("assignee_id", assignee_id, required=False, limit=MAX_ID)
    for name, value, enum in (("kind", kind, Kind), ("channel", channel, Channel), ("priority", priority, Priority)):
        if value not in {m.value for m in enum}:
            problems.append((name, f"must be one of {', '.join(m.value for m in enum)}"))
    tier = customer_tier or "standard"
    if tier not in TIERS:
        problems.append(("customer_tier", f"must be one of {', '.join(TIERS)}"))
    if kind == Kind.TASK and not parent_ticket_id:
        problems.append(("parent_ticket_id", "a task is a child of another ticket: give its id"))
    if problems:
        raise InvalidArgument("the ticket is not valid: " + problems[0][1], field_violations=problems)
    return NewTicket(
        customer_id=customer_id,
        order_id=order_id.strip(),
        product_sku=product_sku.strip(),
        kind=Kind(kind),
        channel=Channel(channel),
        priority=Priority(priority),
        category_id=category_id,
        subject=subject.strip(),
        description=description.strip(),
        parent_ticket_id=parent_ticket_id,
        customer_tier=tier,
        assignee_id=assignee_id,
    )


def ensure_transition(current: Status, wanted: Status, *, open_children: int) -> None:
    """Refuse a status change the lifecycle does not allow, naming the field that says no."""
    if wanted not in TRANSITIONS[current]:
        raise FailedPrecondition(
            f"a {current.value} ticket cannot become {wanted.value}",
            reason="TICKET_STATUS_TRANSITION",
            field_violations=[
                ("status", f"from {current.value}: one of {sorted(s.value for s in TRANSITIONS[current])}")
            ],
        )
    if wanted in (Status.RESOLVED, Status.CLOSED) and open_children:
        raise FailedPrecondition(
            f"the ticket has {open_children} open child task(s): resolve them first",
            reason="TICKET_HAS_OPEN_CHILDREN",
            field_violations=[("status", f"{open_children} child task(s) are still open")],
        )


def validate_message(visibility: str, body: str) -> tuple[Visibility, str]:
    problems = _text_problems("body", body, required=True, limit=MAX_MESSAGE)
    if visibility not in {v.value for v in Visibility}:
        problems.append(("visibility", f"must be one of {', '.join(v.value for v in Visibility)}"))
    if problems:
        raise InvalidArgument("the message is not valid: " + problems[0][1], field_violations=problems)
    return Visibility(visibility), body.strip()


@dataclass(frozen=True)
class NewAttachment:
    filename: str
    content_type: str
    size_bytes: int


def validate_attachment(filename: str, content_type: str, size_bytes: int) -> NewAttachment:
    """An attachment as asked, or InvalidArgument naming each wrong field. The file name keeps only
    its last path part (a browser may send C:\\Users\\…), and no control character survives into a
    Content-Disposition header."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    media_type = content_type.split(";")[0].strip().lower()
    problems: list[tuple[str, str]] = []
    if not 1 <= len(name) <= MAX_FILENAME:
        problems.append(("filename", f"must have 1 to {MAX_FILENAME} characters"))
    elif any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        problems.append(("filename", "must have no control characters"))
    if media_type not in ATTACHMENT_TYPES:
        problems.append(("content_type", f"must be one of {', '.join(ATTACHMENT_TYPES)}"))
    if size_bytes < 1:
        problems.append(("data", "is empty"))
    elif size_bytes > MAX_ATTACHMENT_BYTES:
        problems.append(("data", f"must be at most {MAX_ATTACHMENT_BYTES} bytes"))
    if problems:
        raise InvalidArgument("the attachment is not valid: " + problems[0][1], field_violations=problems)
    return NewAttachment(filename=name, content_type=media_type, size_bytes=size_bytes)


def validate_survey(score: int, comment: str) -> str:
    problems: list[tuple[str, str]] = []
    if score not in SURVEY_SCORES:
        problems.append(("score", "must be 1 to 5"))
    problems += _text_problems("comment", comment, required=False, limit=MAX_SURVEY_COMMENT)
    if problems:
        raise InvalidArgument("the answer is not valid: " + problems[0][1], field_violations=problems)
    return comment.strip()


# ---------------------------------------------------------------- assignment


def choose_assignee(
    strategy: Strategy, members: Sequence[str], last_assignee: str, open_by_member: Mapping[str, int]
) -> str:
    """The member a new ticket goes to: the next after the last one (round robin), or the one with
    the fewest open tickets, ties in member order (least loaded). "" when the queue has nobody."""
    if not members:
        return ""
    if strategy is Strategy.LEAST_LOADED:
        return min(members, key=lambda m: (open_by_member.get(m, 0), members.index(m)))
    if last_assignee in members:
        return members[(members.index(last_assignee) + 1) % len(members)]
    return members[0]


# ---------------------------------------------------------------- SLA targets


@dataclass(frozen=True)
class Target:
    metric: Metric
    priority: Priority
    category_id: str
    customer_tier: str
    minutes: int


def target_for(
    targets: Sequence[Target], metric: Metric, priority: Priority, category_path: Sequence[str], tier: str
) -> int | None:
    """Minutes of the most specific target for the ticket: a target for its category beats one
    for a parent category, which beats one for any category; then a tier's beats any tier's.
    None when the policy sets none for the metric and priority."""
    best: tuple[int, int] | None = None
    found: int | None = None
    for t in targets:
        if t.metric is not metric or t.priority is not priority:
            continue
        if t.category_id and t.category_id not in category_path:
            continue
        if t.customer_tier and t.customer_tier != tier:
            continue
        depth = len(category_path) - category_path.index(t.category_id) if t.category_id else 0
        rank = (depth, 1 if t.customer_tier else 0)
        if best is None or rank > best:
            best, found = rank, t.minutes
    return found


def parse_targets(raw: Sequence[Mapping[str, object]], known_categories: frozenset[str]) -> list[Target]:
    """An administrator's targets, or InvalidArgument naming each wrong one (targets[i].field)."""
    problems: list[tuple[str, str]] = []
    parsed: list[Target] = []
    seen: set[tuple[str, str, str, str]] = set()
    for i, t in enumerate(raw):
        metric, priority = str(t.get("metric", "")), str(t.get("priority", ""))
        category, tier = str(t.get("category_id", "")), str(t.get("customer_tier", ""))
        minutes = t.get("target_minutes")
        if metric not in {m.value for m in Metric}:
            problems.append((f"targets[{i}].metric", "is required"))
        if priority not in {p.value for p in Priority}:
            problems.append((f"targets[{i}].priority", "is required"))
        if category and category not in known_categories:
            problems.append((f"targets[{i}].category_id", f"no category {category!r}"))
        if tier and tier not in TIERS:
            problems.append((f"targets[{i}].customer_tier", f"must be one of {', '.join(TIERS)}"))
        if not isinstance(minutes, int) or not 1 <= minutes <= 60 * 24 * 90:
            problems.append((f"targets[{i}].target_minutes", "must be 1 to 129600 (90 days)"))
        key = (metric, priority, category, tier)
        if key in seen:
            problems.append((f"targets[{i}]", "repeats an earlier target's metric, priority, category and tier"))
        seen.add(key)
        if not problems:
            parsed.append(Target(Metric(metric), Priority(priority), category, tier, int(str(minutes))))
    if problems:
        raise InvalidArgument("the SLA policy is not valid: " + problems[0][1], field_violations=problems)
    return parsed
