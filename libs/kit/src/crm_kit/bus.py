"""The JetStream bus: one stream over crm.>, durable pull consumers, explicit acks.

A handler runs in one unit of work together with its inbox record, so a redelivery has no
second effect. A transient failure is nak'ed with back-off; after the bounded number of
deliveries, or at once for a poison message, the event becomes a dead-letter row and is
terminated, and the consumer goes on with the next. Waiting is not failing: an event whose
handler raises RetryLater (it needs something another consumer brings) or meets an unavailable
database is held and retried without a redelivery, and dead-lettered only after
`consumer_retry_later_max_seconds`.

Handlers act as the system (`caller.SYSTEM_ACTOR`, request id = the event id), so the audit rows
they write and the gRPC calls they make name no person.

The bus connects as the service's own NATS user (`crm_kit.nats_access`): it may neither create nor
change the stream (only the `provisioner` identity does, `provision_streams`, before the services
start; a service waits for it), and it publishes only the service's own subjects. A dead
letter is therefore replayed under the service's own subjects (`crm.<service>.replays.<durable>`)
and reaches the consumer that failed on it through the service's replay consumer.

One durable consumer per producer: the events a service consumes from one producer (reporting's
`LeadCaptured`, `LeadAssigned` and `CampaignChanged` from leads) arrive through one durable with
those subjects as its filters (`nats_access.consumer_groups`), in the stream's order, fetched by
one loop and, when several are there, handled in one transaction. Each event type keeps its own
logical consumer name (`durable_for`: its inbox key, metrics label and dead-letter consumer), so
the move from one durable per event type re-applies nothing. The provisioner creates the durables
(`provision_consumers`); a service binds to them and refuses to start when one reads other
subjects than its code consumes. Only a bus whose NATS identity may create consumers (a test's or
a developer's unrestricted one) creates its own when it is missing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    DiscardPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError
from opentelemetry import trace
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm_kit import caller, logs, metrics, nats_access, telemetry
from crm_kit.db import Database, UnitOfWork, database_unavailable
from crm_kit.events import Envelope, PoisonMessage, RetryLater, decode, subject_for
from crm_kit.failpoints import failpoint
from crm_kit.settings import ServiceSettings

log = logging.getLogger(__name__)

TransactionalHandler = Callable[[UnitOfWork, Envelope[Any]], Awaitable[None]]
# A handler that manages its own transactions (e.g. an external side effect that records its
# intent first); it must claim the inbox itself through Database.unit_of_work().
SelfManagedHandler = Callable[[Envelope[Any]], Awaitable[None]]


@dataclass
class Subscription:
    durable: str
    subject: str
    message_cls: type[Message]
    # A TransactionalHandler when transactional, else a SelfManagedHandler.
    handler: Callable[..., Awaitable[None]]
    transactional: bool
    # Self-managed handlers only: how many events are handled at once (each acked when it is done).
    concurrency: int = 1


@dataclass
class ConsumerGroup:
    """One durable consumer on the server: the subscriptions of one producer's events."""

    durable: str
    subscriptions: dict[str, Subscription]  # by subject

    @property
    def subjects(self) -> tuple[str, ...]:
        return tuple(sorted(self.subscriptions))

    @property
    def transactional(self) -> bool:
        return next(iter(self.subscriptions.values())).transactional

    @property
    def concurrency(self) -> int:
        return next(iter(self.subscriptions.values())).concurrency


class ConsumerSubjectMismatch(RuntimeError):
    """A durable consumer of this service exists on the server with other subjects than the ones
    the code consumes (a release that consumes another event, not yet provisioned)."""


class StreamNotProvisioned(RuntimeError):
    """The CRM stream does not exist (yet): a service waits for the provisioner to create it."""


class StreamMismatch(RuntimeError):
    """The CRM stream exists with another shape than this release's settings (its subjects, file
    storage, replicas): the provisioner's settings and the service's disagree. The service does
    not consume and is not ready until they agree."""


class ConsumersNotProvisioned(RuntimeError):
    """A durable consumer of this service does not exist (yet): the provisioner creates it."""


class EventBus:
    def __init__(self, settings: ServiceSettings, db: Database | None) -> None:
        self.settings = settings
        self.db = db
        self.nc: NatsClient | None = None
        self.js: JetStreamContext | None = None
        self.subscriptions: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._groups: list[ConsumerGroup] = []
        self._stopping = asyncio.Event()
        self._in_flight = 0
        # Events held (not redelivered) until their next try: the handler said RetryLater, or the
        # database was unavailable.
        self._waiting: dict[asyncio.Task[None], Msg] = {}
        # A handler found the database unreachable: fetch nothing more until it answers.
        self._database_down = False
        # Why the stream is not as this release's settings describe it ("": it is, or not known yet).
        self.stream_problem = ""

    async def connect(self) -> None:
        await self.close()  # a retry after a half-finished start must not leak the old client

        async def on_error(exc: Exception) -> None:
            log.warning("NATS connection error", extra={"error": repr(exc)})

        self.nc = await nats_access.connect_long_lived(self.settings, error_cb=on_error)
        self.js = self.nc.jetstream()
        await self.ensure_stream()

    async def ensure_stream(self) -> None:
        """Check that the stream exists. A service's NATS user may not create it (it could choose
        the subjects and retention) nor change it: the provisioner does, before the services start
        (`provision_streams`). Missing, this raises StreamNotProvisioned and the caller retries."""
        assert self.js is not None
        try:
            info = await self.js.stream_info(self.settings.stream_name)
        except NotFoundError as exc:
            raise StreamNotProvisioned(
                f"the stream {self.settings.stream_name} does not exist: the provisioner creates it "
                "(python -m crm_kit.nats_access provision, docs/operations.md)"
            ) from exc
        differences = stream_differences(info.config, self.settings)
        self.stream_problem = "; ".join(differences)
        if differences:
            raise StreamMismatch(
                f"the stream {self.settings.stream_name} differs from this release's settings: {self.stream_problem} "
                "(the provisioner applies the settings: the hook Job, or python -m crm_kit.nats_access provision)"
            )

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def publish_raw(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        assert self.js is not None, "bus not connected"
        await self.js.publish(subject, payload, headers=headers, timeout=5)

    def subscribe(
        self,
        message_cls: type[Message],
        handler: TransactionalHandler | SelfManagedHandler,
        *,
        transactional: bool = True,
        concurrency: int = 1,
    ) -> None:
        """Consume message_cls events through the durable `durable_for(message_cls)`.

        `concurrency` > 1 (self-managed handlers only): up to that many events are handled at
        once, each acked when its handler is done, and the next are fetched as slots free up —
        for a handler that waits on a remote call (an SMS provider), so one slow send does not
        hold every event behind it. Its exactly-once rule must not depend on order (an intent
        key per event, as notifications has)."""
        if concurrency > 1 and transactional:
            raise ValueError("concurrency is for self-managed handlers; a transactional consumer batches instead")
        durable = self.durable_for(message_cls)
        if not nats_access.may_consume(self.settings.service_name, subject_for(message_cls)):
            # The NATS server would refuse the consumer: say so now, not as a start-up timeout.
            raise nats_access.NatsAccessError(
                f"{self.settings.service_name} may not consume {subject_for(message_cls)}: "
                "add it to crm_kit.nats_access.CONSUMES (the NATS permission table)"
            )
        subject = subject_for(message_cls)
        for other in self.subscriptions:
            if nats_access.producer_of(other.subject) == nats_access.producer_of(subject) and (
                other.transactional != transactional or other.concurrency != max(1, concurrency)
            ):
                # One durable per producer is fetched by one loop, in one way.
                raise ValueError(
                    f"{subject} and {other.subject} share a durable consumer: subscribe them alike "
                    "(transactional, concurrency)"
                )
        # Exported from 0, so increase() (the dead-letter alert) sees the first one.
        metrics.DEAD_LETTERS.labels(durable)
        metrics.EVENT_REDELIVERIES.labels(durable)
        self.subscriptions.append(
            Subscription(durable, subject, message_cls, handler, transactional, max(1, concurrency))
        )

    def durable_for(self, message_cls: type[Message]) -> str:
        """The logical consumer (inbox key, metrics label, dead-letter consumer) for message_cls:
        <service>-<event>, stable across releases. Self-managed handlers claim their inbox under
        it. The server-side durable is its producer's (`groups`)."""
        return nats_access.durable_name(self.settings.service_name, subject_for(message_cls))

    def consumer_for(self, message_cls: type[Message]) -> str:
        """The durable consumer on the server that delivers message_cls: its producer's."""
        subject = subject_for(message_cls)
        return nats_access.group_durable(self.settings.service_name, nats_access.producer_of(subject))

    def replay_subject(self, durable: str) -> str:
        """Where a dead letter of this service's consumer `durable` is republished."""
        return nats_access.replay_subject(self.settings.service_name, durable)

    def groups(self) -> list[ConsumerGroup]:
        """The durable consumers the subscriptions need: one per producer."""
        by_subject = {sub.subject: sub for sub in self.subscriptions}
        return [
            ConsumerGroup(durable, {subject: by_subject[subject] for subject in subjects})
            for durable, subjects in nats_access.consumer_groups(self.settings.service_name, by_subject).items()
        ]

    async def start_consumers(self) -> None:
        assert self.js is not None
        # A retry after a half-finished start: no second pull loop per consumer.
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._groups = self.groups()
        for group in self._groups:
            psub = await self._pull_subscription(group.durable, group.subjects)
            consume = self._consume_concurrently if group.concurrency > 1 else self._consume
            self._tasks.append(asyncio.create_task(consume(group, psub), name=f"consumer:{group.durable}"))
        if self.subscriptions:
            durable = nats_access.replay_durable(self.settings.service_name)
            psub = await self._pull_subscription(durable, (self.replay_subject("*"),))
            self._tasks.append(asyncio.create_task(self._consume_replays(psub), name=f"consumer:{durable}"))
            self._tasks.append(asyncio.create_task(self._report_pending(), name="consumer-pending"))

    async def _pull_subscription(self, durable: str, subjects: tuple[str, ...]) -> JetStreamContext.PullSubscription:
        """Bind to the durable `durable`, which must read exactly `subjects`. Missing, it is
        created when this bus's NATS identity may (a test's or a developer's unrestricted one; it
        then starts at the stream's beginning); a service's own identity may not, and the service
        waits for the provisioner (ConsumersNotProvisioned)."""
        assert self.js is not None
        stream = self.settings.stream_name
        try:
            info = await self.js.consumer_info(stream, durable)
        except NotFoundError:
            try:
                info = await self.js.add_consumer(stream, consumer_config(self.settings, durable, subjects), timeout=2)
            except Exception as exc:  # refused: a permissions violation answers with a timeout
                raise ConsumersNotProvisioned(
                    f"the durable consumer {durable} does not exist and this service may not create it: the "
                    "provisioner does (python -m crm_kit.nats_access provision, docs/operations.md)"
                ) from exc
        bound = consumer_subjects(info)
        if bound != tuple(sorted(subjects)):
            # Reading other subjects than the code handles would skip or mis-handle events.
            raise ConsumerSubjectMismatch(
                f"the durable consumer {durable} reads {list(bound)!r}, not {sorted(subjects)!r}: run the "
                "provisioner of this release (docs/operations.md), and start again"
            )
        return await self.js.pull_subscribe_bind(durable, stream)

    async def _consume_replays(self, psub: JetStreamContext.PullSubscription) -> None:
        """Hand each replayed dead letter to the subscription whose durable consumer failed on it
        (the subject's last token), one at a time; a replay for no consumer of this service ends."""
        by_durable = {sub.durable: sub for sub in self.subscriptions}
        while not self._stopping.is_set():
            try:
                msgs = await psub.fetch(1, timeout=1)
            except (NatsTimeoutError, TimeoutError):
                continue
            except Exception:
                if self._stopping.is_set():
                    return
                log.exception("fetch of replays failed")
                await asyncio.sleep(1)
                continue
            for msg in msgs:
                sub = by_durable.get(msg.subject.rsplit(".", 1)[-1])
                if sub is None:
                    log.error("replay for no consumer of this service; dropped", extra={"subject": msg.subject})
                    await msg.term()
                    continue
                self._in_flight += 1
                try:
                    await self._handle(sub, msg)
                except Exception:
                    log.exception("handling a replay failed; it will be redelivered", extra={"consumer": sub.durable})
                finally:
                    self._in_flight -= 1

    async def _report_pending(self) -> None:
        """Export each durable consumer's lag (stream messages not yet delivered to it) as
        crm_consumer_pending, refreshed every `consumer_pending_refresh_seconds`: one cheap
        consumer-info request per durable consumer, independent of the pull loops (a stuck handler still
        shows as a growing backlog)."""
        assert self.js is not None
        while not self._stopping.is_set():
            for group in self._groups:
                try:
                    info = await self.js.consumer_info(self.settings.stream_name, group.durable, timeout=2)
                except Exception:
                    log.debug("consumer info failed", exc_info=True, extra={"consumer": group.durable})
                    continue
                metrics.CONSUMER_PENDING.labels(group.durable).set(info.num_pending or 0)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.settings.consumer_pending_refresh_seconds)
            except TimeoutError:
                pass

    async def _consume(self, group: ConsumerGroup, psub: JetStreamContext.PullSubscription) -> None:
        # nats-py keeps a lingering pull open until the whole batch arrived or it expired, so a
        # lone event could wait out the timeout. Idle, wait for one message; busy, take what is
        # there in batches with a short linger; then go back to waiting for one.
        busy = False
        while not self._stopping.is_set():
            if self._database_down:
                await self._wait_for_database()
                continue
            try:
                if busy:
                    msgs = await psub.fetch(self.settings.consumer_batch_size, timeout=0.02)
                else:
                    msgs = await psub.fetch(1, timeout=1)
            except (NatsTimeoutError, TimeoutError):
                busy = False
                continue
            except Exception:
                if self._stopping.is_set():
                    return
                log.exception("fetch failed", extra={"consumer": group.durable})
                await asyncio.sleep(1)
                continue
            busy = True
            self._in_flight += len(msgs)
            try:
                if group.transactional and len(msgs) > 1:
                    await self._handle_batch(group, msgs)
                else:
                    for msg in msgs:
                        await self._handle_routed(group, msg)
            except Exception:
                # Never let one message end the consumer: what was not acked comes back after
                # AckWait and is handled (or dead-lettered) then.
                log.exception(
                    "consumer failed on a batch; unacked events will be redelivered", extra={"consumer": group.durable}
                )
            finally:
                self._in_flight -= len(msgs)

    async def _handle_routed(self, group: ConsumerGroup, msg: Msg) -> None:
        """Hand msg to its subject's subscription. The durable's filters are exactly those
        subjects (checked at start), so no other can come; if one did, it is not this service's
        to handle: terminated, with an error logged."""
        sub = group.subscriptions.get(msg.subject)
        if sub is None:
            log.error("event on a subject this consumer does not handle; terminated", extra={"subject": msg.subject})
            await msg.term()
            return
        await self._handle(sub, msg)

    async def _consume_concurrently(self, group: ConsumerGroup, psub: JetStreamContext.PullSubscription) -> None:
        """Keep up to the group's concurrency events in hand, each handled in its own task that acks it
        (`_handle`). Fetching is as in `_consume`: one event when idle, then, while busy, as many
        as there are free places with a short linger; with every place taken, it waits for one.

        Stopping: the loop ends and the handlers in hand finish; stop_consuming waits for them
        within its grace and then cancels this task, which cancels what still runs (its event
        comes back unacked) rather than outlive the connection and pool it needs."""
        running: set[asyncio.Task[None]] = set()
        freed = asyncio.Event()
        busy = False
        in_hand = 0

        async def handle(msg: Msg) -> None:
            nonlocal in_hand
            try:
                await self._handle_routed(group, msg)
            except Exception:
                log.exception("handling an event failed; it will be redelivered", extra={"consumer": group.durable})
            finally:
                in_hand -= 1
                self._in_flight -= 1
                freed.set()

        try:
            while not self._stopping.is_set():
                if self._database_down:
                    await self._wait_for_database()
                    continue
                if in_hand >= group.concurrency:
                    freed.clear()
                    await freed.wait()
                    continue
                msgs = await self._fetch(group.durable, psub, group.concurrency - in_hand if busy else 1, linger=busy)
                busy = bool(msgs)
                for msg in msgs:
                    in_hand += 1
                    self._in_flight += 1
                    task = asyncio.create_task(handle(msg), name=f"event:{group.durable}")
                    running.add(task)
                    task.add_done_callback(running.discard)
            if running:
                await asyncio.wait(running)
        except asyncio.CancelledError:
            for task in list(running):
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise

    async def _fetch(self, durable: str, psub: JetStreamContext.PullSubscription, n: int, *, linger: bool) -> list[Msg]:
        """Up to n events: a short linger when busy, else waiting up to a second for one. An empty
        list on a timeout or a failed fetch (logged, after a pause)."""
        try:
            return await psub.fetch(n, timeout=0.02 if linger else 1)
        except (NatsTimeoutError, TimeoutError):
            return []
        except Exception:
            if not self._stopping.is_set():
                log.exception("fetch failed", extra={"consumer": durable})
                await asyncio.sleep(1)
            return []

    async def _handle_batch(self, group: ConsumerGroup, msgs: list[Msg]) -> None:
        """Handle a fetched batch, in the stream's order, in ONE transaction (one inbox statement,
        one commit) whatever event types it mixes; if any handler fails, roll it all back and
        handle the batch one event per transaction instead, so only the failing event is retried."""
        assert self.db is not None
        decoded = await self._decode_batch(group, msgs)
        if not decoded:
            return
        started = time.perf_counter()
        tracer = telemetry.tracer(__name__)
        try:
            async with self.db.unit_of_work() as uow:
                fresh = await uow.claim_inbox_each([(sub.durable, env.id) for _, sub, env in decoded])
                for _msg, sub, env in decoded:
                    if (sub.durable, env.id) not in fresh:
                        continue  # handled before, or twice in this batch
                    fresh.discard((sub.durable, env.id))
                    with (
                        tracer.start_as_current_span(
                            f"consume {sub.subject}",
                            context=telemetry.extract_context(env.headers),
                            kind=trace.SpanKind.CONSUMER,
                        ),
                        caller.acting_as(caller.SYSTEM_ACTOR, env.id),
                    ):
                        logs.access(log, "handling event", {"consumer": sub.durable, "event_id": env.id}, failed=False)
                        await sub.handler(uow, env)
        except Exception:
            log.info(
                "a handler failed inside a batch; handling the batch one event at a time",
                exc_info=True,
                extra={"consumer": group.durable, "batch": len(decoded)},
            )
            for msg, sub, _ in decoded:
                await self._handle(sub, msg)
            return
        # Crash window: the batch's effects are committed, no message acked; all come back.
        failpoint("bus.after_commit_before_ack")
        elapsed = (time.perf_counter() - started) / len(decoded)
        for msg, sub, _ in decoded:
            if msg.metadata and msg.metadata.num_delivered and msg.metadata.num_delivered > 1:
                metrics.EVENT_REDELIVERIES.labels(sub.durable).inc()
            await msg.ack()
            metrics.EVENTS_CONSUMED.labels(sub.durable, sub.subject, "ok").inc()
            metrics.HANDLER_SECONDS.labels(sub.durable).observe(elapsed)

    async def _decode_batch(
        self, group: ConsumerGroup, msgs: list[Msg]
    ) -> list[tuple[Msg, Subscription, Envelope[Any]]]:
        """Each message with its subscription and envelope; one that cannot be decoded is
        dead-lettered (or terminated) on the way."""
        decoded: list[tuple[Msg, Subscription, Envelope[Any]]] = []
        for msg in msgs:
            sub = group.subscriptions.get(msg.subject)
            try:
                if sub is None:
                    raise PoisonMessage(msg.subject)
                decoded.append((msg, sub, decode(msg.subject, dict(msg.headers or {}), msg.data, sub.message_cls)))
            except PoisonMessage:
                await self._handle_routed(group, msg)
        return decoded

    async def _handle(self, sub: Subscription, msg: Msg, waited: tuple[int, float] | None = None) -> None:
        """Handle one delivery; `waited` is (tries, since when) for an event held by _retry_later."""
        deliveries = msg.metadata.num_delivered if msg.metadata else 1
        if deliveries > 1 and waited is None:
            metrics.EVENT_REDELIVERIES.labels(sub.durable).inc()
        headers = dict(msg.headers or {})
        started = time.perf_counter()
        ctx = telemetry.extract_context(headers)
        with telemetry.tracer(__name__).start_as_current_span(
            f"consume {sub.subject}", context=ctx, kind=trace.SpanKind.CONSUMER
        ):
            try:
                envelope = decode(msg.subject, headers, msg.data, sub.message_cls)
            except PoisonMessage as exc:
                await self._dead_letter(sub, msg, headers, str(exc), deliveries)
                metrics.EVENTS_CONSUMED.labels(sub.durable, sub.subject, "poison").inc()
                return
            if deliveries > self.settings.consumer_max_deliver:
                # Delivered past the bound without an answer (e.g. the process died handling it).
                await self._dead_letter(
                    sub, msg, headers, f"delivered {deliveries} times without being handled", deliveries
                )
                return
            logs.access(
                log,
                "handling event",
                {"consumer": sub.durable, "event_id": envelope.id, "deliveries": deliveries},
                failed=deliveries > 1,
            )
            try:
                with caller.acting_as(caller.SYSTEM_ACTOR, envelope.id):
                    if sub.transactional:
                        assert self.db is not None
                        async with self.db.unit_of_work() as uow:
                            if await uow.claim_inbox(sub.durable, envelope.id):
                                await sub.handler(uow, envelope)
                    else:
                        await sub.handler(envelope)
            except RetryLater as exc:
                await self._retry_later(sub, msg, headers, envelope.id, exc, deliveries, waited)
                return
            except Exception as exc:
                if database_unavailable(exc):
                    # An outage of this service's own database is no fault of the event: it must
                    # not become a dead letter because PostgreSQL took longer than the back-off.
                    self._database_down = True
                    await self._retry_later(sub, msg, headers, envelope.id, exc, deliveries, waited)
                    return
                metrics.EVENTS_CONSUMED.labels(sub.durable, sub.subject, "error").inc()
                if deliveries >= self.settings.consumer_max_deliver or isinstance(exc, PoisonMessage):
                    log.exception(
                        "handler failed for the last time; dead-lettering",
                        extra={"consumer": sub.durable, "event_id": envelope.id, "deliveries": deliveries},
                    )
                    await self._dead_letter(sub, msg, headers, repr(exc), deliveries)
                else:
                    backoff = self.settings.consumer_backoff_seconds
                    delay = backoff[min(deliveries - 1, len(backoff) - 1)] if backoff else 1.0
                    log.warning(
                        "handler failed; will retry",
                        exc_info=True,
                        extra={"consumer": sub.durable, "event_id": envelope.id, "retry_in_s": delay},
                    )
                    await msg.nak(delay=delay)
                return
            # Crash window: the handler's effect is committed, the message not acked; it comes back.
            failpoint("bus.after_commit_before_ack")
            await msg.ack()
            metrics.EVENTS_CONSUMED.labels(sub.durable, sub.subject, "ok").inc()
            metrics.HANDLER_SECONDS.labels(sub.durable).observe(time.perf_counter() - started)

    async def _retry_later(
        self,
        sub: Subscription,
        msg: Msg,
        headers: dict[str, str],
        event_id: str,
        exc: Exception,
        deliveries: int,
        waited: tuple[int, float] | None,
    ) -> None:
        """Hold the event and try it again after a back-off, without a redelivery: a nak would
        count toward consumer_max_deliver, and an event waiting for another consumer to catch up
        (which may take longer than AckWait, e.g. after that consumer's process died holding
        unacked events) or for the database to come back must not become a dead letter for it.
        Dead-lettered only after consumer_retry_later_max_seconds of waiting."""
        tries, since = waited or (0, time.monotonic())
        waiting_for = time.monotonic() - since
        if waiting_for > self.settings.consumer_retry_later_max_seconds:
            log.error(
                "event still not ready after the longest wait; dead-lettering",
                extra={"consumer": sub.durable, "event_id": event_id, "waited_s": round(waiting_for, 1)},
            )
            await self._dead_letter(
                sub, msg, headers, f"not ready after waiting {waiting_for:.0f} s: {exc!r}", deliveries
            )
            return
        backoff = self.settings.consumer_backoff_seconds or [1.0]
        # Each wait is shorter than AckWait, and in_progress() restarts AckWait before it.
        delay = min(backoff[min(tries, len(backoff) - 1)], self.settings.consumer_ack_wait_seconds / 2)
        log.info(
            "event not ready yet; holding it for a retry"
            if isinstance(exc, RetryLater)
            else "database unavailable; holding the event for a retry",
            extra={"consumer": sub.durable, "event_id": event_id, "reason": str(exc)[:500], "retry_in_s": delay},
        )
        task = asyncio.create_task(
            self._wait_and_retry(sub, msg, delay, (tries + 1, since)), name=f"retry-later:{sub.durable}"
        )
        self._waiting[task] = msg
        task.add_done_callback(lambda done: self._waiting.pop(done, None))

    async def _wait_and_retry(self, sub: Subscription, msg: Msg, delay: float, waited: tuple[int, float]) -> None:
        try:
            await msg.in_progress()
        except Exception:
            # NATS unreachable: if AckWait runs out the event comes back as a redelivery instead.
            log.debug("in_progress failed for a held event", exc_info=True, extra={"consumer": sub.durable})
        await asyncio.sleep(delay)
        if self._stopping.is_set():
            try:
                await msg.nak()
            except Exception:
                log.debug("nak of a held event failed on shutdown", exc_info=True)
            return
        self._in_flight += 1
        try:
            await self._handle(sub, msg, waited)
        except Exception:
            log.exception("retrying a held event failed; it will be redelivered", extra={"consumer": sub.durable})
        finally:
            self._in_flight -= 1

    async def _wait_for_database(self) -> None:
        """Until the database answers again (checked every half second), or the bus stops."""
        while not self._stopping.is_set():
            if self.db is None or await self.db.ping():
                if self._database_down:
                    log.info("database reachable again; fetching events")
                self._database_down = False
                return
            await asyncio.sleep(0.5)

    async def _dead_letter(self, sub: Subscription, msg: Msg, headers: dict[str, str], error: str, n: int) -> None:
        """Record the event as a dead letter and terminate it; if the row cannot be written
        (database down), nak it instead so the next delivery tries again."""
        assert self.db is not None
        event_id = headers.get("ce-id") or headers.get("Nats-Msg-Id")
        try:
            table = self.db.tables.dead_letters
            async with self.db.unit_of_work() as uow:
                # A redelivery of a letter already recorded (the process died before `term`)
                # leaves the open one as it is.
                recorded = await uow.conn.execute(
                    pg_insert(table)
                    .values(
                        consumer=sub.durable,
                        subject=msg.subject,
                        event_id=event_id[:64] if event_id else None,
                        headers=headers,
                        payload=msg.data,
                        error=error[:4000],
                        deliveries=n,
                    )
                    .on_conflict_do_nothing(
                        index_elements=[table.c.consumer, table.c.event_id],
                        index_where=table.c.replayed_at.is_(None),
                    )
                )
            failpoint("bus.after_dead_letter_before_term")
        except Exception:
            log.exception("could not record a dead letter; will retry", extra={"consumer": sub.durable})
            await msg.nak(delay=max(self.settings.consumer_backoff_seconds or [1.0]))
            return
        if recorded.rowcount:
            metrics.DEAD_LETTERS.labels(sub.durable).inc()
            log.error(
                "dead letter recorded",
                extra={"consumer": sub.durable, "subject": msg.subject, "error": error, "deliveries": n},
            )
        else:
            log.warning(
                "dead letter already recorded and open; this delivery is dropped",
                extra={"consumer": sub.durable, "subject": msg.subject, "event_id": event_id},
            )
        await msg.term()

    async def stop_consuming(self, grace_seconds: float = 10.0) -> None:
        """Stop fetching and let in-flight handlers finish (bounded); the connection stays open
        so the outbox relay can still flush what they committed."""
        self._stopping.set()
        deadline = time.monotonic() + grace_seconds
        while self._in_flight and time.monotonic() < deadline:  # noqa: ASYNC110 - bounded drain poll
            await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        # Held events go back now rather than after AckWait, to this or another replica.
        waiting = dict(self._waiting)
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        for msg in waiting.values():
            try:
                await msg.nak()
            except Exception:
                log.debug("nak of a held event failed on shutdown", exc_info=True)

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """stop_consuming, then flush pending acks and close the connection."""
        await self.stop_consuming(grace_seconds)
        await self.close()

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            # Handlers are done and their acks queued: flush them, then close. (drain() would
            # wait out its 30 s timeout on the pull subscriptions' expired lingering requests.)
            try:
                await self.nc.flush(timeout=2)
            except Exception:
                log.warning("NATS flush on shutdown failed; unacked events will be redelivered", exc_info=True)
            await self.nc.close()


async def provision_streams(settings: ServiceSettings, *, consumers: bool = True) -> None:
    """Create the CRM stream and the gateway's Idempotency-Key bucket, or apply settings'
    configuration to them, and (with `consumers`) every service's durable consumers
    (`provision_consumers`), as settings' identity: the `provisioner` (no service may create or
    change any of them). Run before the services start (the dev launcher; a Helm hook Job in a
    cluster)."""
    nc = await nats_access.connect(settings, connect_timeout=5, allow_reconnect=False)
    try:
        js = nc.jetstream()
        for config in (stream_config(settings), idempotency_stream_config(settings)):
            try:
                await js.add_stream(config)
            except BadRequestError:
                # It exists with another configuration (add is idempotent for the same one).
                await js.update_stream(config)
            log.info("stream provisioned", extra={"stream": config.name})
        if consumers:
            await provision_consumers(js, settings)
    finally:
        await nc.close()


async def provision_consumers(js: JetStreamContext, settings: ServiceSettings) -> None:
    """Every service's durable consumers as the permission table lists them: one per producer it
    consumes from, and its replay consumer. A new one starts where the per-event durables it
    replaces had got to (`ensure_consumer`); an existing one takes the table's subjects and
    settings' AckWait."""
    for service, subjects in nats_access.CONSUMES.items():
        if not subjects:
            continue
        groups = nats_access.consumer_groups(service, subjects)
        for durable, group_subjects in groups.items():
            # The per-event durables of earlier releases that this one replaces.
            replaced = tuple(nats_access.durable_name(service, subject) for subject in group_subjects)
            await ensure_consumer(js, settings, durable, group_subjects, update=True, replaced=replaced)
        replays = nats_access.replay_durable(service)
        await ensure_consumer(js, settings, replays, (nats_access.replay_subject(service, "*"),), update=True)
        log.info("consumers provisioned", extra={"for_service": service, "consumers": [*groups, replays]})


def consumer_subjects(info: ConsumerInfo) -> tuple[str, ...]:
    """The subjects a durable consumer reads, sorted (one filter or a list of them)."""
    config = info.config
    return tuple(sorted(config.filter_subjects or ([config.filter_subject] if config.filter_subject else [])))


def consumer_config(settings: ServiceSettings, durable: str, subjects: tuple[str, ...]) -> ConsumerConfig:
    """A service's durable pull consumer reading `subjects`, acknowledged one by one."""
    ordered = sorted(subjects)
    return ConsumerConfig(
        name=durable,
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=settings.consumer_ack_wait_seconds,
        # Bounded by the bus, not the server: at the bound the event must still reach a
        # dead-letter row, and a server-side MaxDeliver would silently stop delivering it.
        max_deliver=-1,
        # One filter in the create subject where there is one (as NATS clients send it).
        filter_subject=ordered[0] if len(ordered) == 1 else None,
        filter_subjects=ordered if len(ordered) > 1 else None,
        max_ack_pending=1000,
    )


async def ensure_consumer(
    js: JetStreamContext,
    settings: ServiceSettings,
    durable: str,
    subjects: tuple[str, ...],
    *,
    update: bool = False,
    replaced: tuple[str, ...] = (),
) -> ConsumerInfo:
    """The durable consumer `durable` reading `subjects`, created if missing; with `update`, an
    existing one is brought to `subjects` and settings' AckWait (its start is kept).

    A new one that takes over from the durables `replaced` (an earlier release's one durable per
    event type, `nats_access.durable_name`) starts at the oldest event one of them had not
    acknowledged, not at the stream's beginning: the events before were handled already, and each
    event type's inbox keeps its name, so what the old durables and the new one both deliver is
    applied once."""
    stream = settings.stream_name
    wanted = consumer_config(settings, durable, subjects)
    try:
        info: ConsumerInfo = await js.consumer_info(stream, durable)
    except NotFoundError:
        start = await _resume_from_replaced(js, stream, replaced)
        if start > 1:
            wanted.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            wanted.opt_start_seq = start
        created = await js.add_consumer(stream, wanted)
        log.info("consumer created", extra={"consumer": durable, "subjects": list(subjects), "start": start})
        return created
    current = info.config
    if update and (consumer_subjects(info), current.ack_wait) != (tuple(sorted(subjects)), wanted.ack_wait):
        # Filters and AckWait may change in place; where it starts may not.
        wanted.deliver_policy, wanted.opt_start_seq = current.deliver_policy, current.opt_start_seq
        info = await js.add_consumer(stream, wanted)
        log.info("consumer updated", extra={"consumer": durable, "subjects": list(subjects)})
    return info


async def _resume_from_replaced(js: JetStreamContext, stream: str, replaced: tuple[str, ...]) -> int:
    """The stream sequence a new durable starts at: 1 when none of the durables `replaced`
    exists, else the oldest sequence one of them has not acknowledged (one that owes nothing has
    seen the whole stream as it was before this look)."""
    if not replaced:
        return 1
    last = (await js.stream_info(stream)).state.last_seq
    floors = []
    for name in replaced:
        try:
            old = await js.consumer_info(stream, name)
        except NotFoundError:
            continue
        caught_up = not (old.num_pending or old.num_ack_pending)
        floors.append(last if caught_up else (old.ack_floor.stream_seq if old.ack_floor else 0))
    return min(floors) + 1 if floors else 1


def stream_differences(config: StreamConfig, settings: ServiceSettings) -> list[str]:
    """How the stream on the server differs from what this release needs of it: its subjects, file
    storage and replicas (age and duplicate window are the provisioner's alone)."""
    wanted = stream_config(settings)
    found = []
    if wanted.subjects is not None and not set(wanted.subjects) <= set(config.subjects or ()):
        found.append(f"subjects {config.subjects} lack {wanted.subjects}")
    if config.storage != wanted.storage:
        found.append(f"storage {config.storage}, not {wanted.storage}")
    if (config.num_replicas or 1) != wanted.num_replicas:
        found.append(f"{config.num_replicas} replicas, not {wanted.num_replicas} (CRM_STREAM_REPLICAS)")
    return found


def stream_config(settings: ServiceSettings) -> StreamConfig:
    """The CRM stream as settings describe it."""
    return StreamConfig(
        name=settings.stream_name,
        subjects=[settings.stream_subjects],
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        duplicate_window=settings.duplicate_window_seconds,
        max_age=settings.stream_max_age_days * 86400,
    )


# What a stored Idempotency-Key value holds beyond the answer's body: its status line, headers
# and fingerprint.
IDEMPOTENCY_HEADER_ALLOWANCE = 64 * 1024


def idempotency_stream_config(settings: ServiceSettings, bucket: str = nats_access.IDEMPOTENCY_BUCKET) -> StreamConfig:
    """The stream behind the gateway's Idempotency-Key bucket, as settings describe it: the
    key-value layout nats-py and nats.go read (one value per key, roll-up, direct get, no
    deletes of the stream's messages by API), but discard-old, so a full bucket drops its oldest
    answers instead of refusing new requests, and per-message TTLs, so an in-flight marker of a
    replica that died frees its key by itself. `bucket`: another name only for tests."""
    return StreamConfig(
        name=f"KV_{bucket}",
        subjects=[f"$KV.{bucket}.>"],
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        max_age=settings.idempotency_ttl_seconds,
        max_bytes=settings.idempotency_max_bytes,
        max_msg_size=settings.idempotency_max_response_bytes + IDEMPOTENCY_HEADER_ALLOWANCE,
        max_msgs_per_subject=1,
        discard=DiscardPolicy.OLD,
        allow_rollup_hdrs=True,
        allow_msg_ttl=True,
        allow_direct=True,
        deny_delete=True,
        duplicate_window=min(120.0, settings.idempotency_ttl_seconds),
    )
