"""Who may do what on the event bus, in one place: the options every NATS client of the CRM
connects with (its identity, TLS, its own inbox prefix) and the permission table the nats-server
enforces for each identity (docs/security.md, "The event bus").

Each service is a NATS user of its own. It may publish only its own subjects (`crm.<service>.>`:
its events and its dead-letter replays), read the CRM stream's info (never create, update, purge or
delete it), and read and acknowledge only its own durable consumers. It creates no consumer: the
provisioner creates each service's consumers from the table below, one per producer whose events
the service consumes (`consumer_groups`: a durable whose `filter_subjects` are exactly the listed
subjects of that producer), so what a consumer reads is decided here and not by the service that
reads it. Replies come
to an inbox under the identity's own prefix (`_INBOX.<name>`), so no identity can listen to the
replies, pulled events included, of another. The gateway reads and writes its Idempotency-Key
bucket but cannot create it: a stream created while the bucket is missing could name any subjects
(other identities' inboxes) and be read back. The `provisioner` identity (the dev launcher; the
Helm hook Job in a cluster, `python -m crm_kit.nats_access provision`) is the only one that creates
and changes the CRM stream, the bucket and the services' consumers; deleting or purging them is
left to the NATS operator's own account.

The table of consumed subjects is checked where it matters: `EventBus.subscribe` refuses a
subject that is not listed here for a known service, so the code cannot drift from what the
server allows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client as NatsClient

if TYPE_CHECKING:
    from crm_kit.settings import ServiceSettings

STREAM = "CRM"
PROVISIONER = "provisioner"
GATEWAY = "gateway"
# The gateway's Idempotency-Key store (a JetStream key-value bucket shared by its replicas).
IDEMPOTENCY_BUCKET = "CRM_IDEMPOTENCY"

# The subjects each service consumes through a durable consumer. Producers publish `crm.<name>.>`.
CONSUMES: Mapping[str, tuple[str, ...]] = {
    "leads": (),
    "sales": ("crm.leads.lead_converted", "crm.leads.leads_merged"),
    "customers": (
        "crm.leads.lead_captured",
        "crm.sales.deal_closed",
        "crm.sales.deal_stage_changed",
        "crm.sales.quote_sent",
        "crm.sales.quote_accepted",
        "crm.leads.activity_logged",
        "crm.leads.lead_touched",
        "crm.leads.leads_merged",
        "crm.orders.order_shipped",
        "crm.notifications.notification_sent",
        "crm.support.ticket_opened",
        "crm.support.ticket_resolved",
        "crm.support.survey_answered",
        "crm.support.ticket_sla_breached",
        "crm.notifications.consent_withdrawn",
        "crm.notifications.consent_granted",
        "crm.reporting.customer_at_risk",
    ),
    "orders": ("crm.sales.deal_closed",),
    "support": (),
    "notifications": (
        "crm.orders.order_shipped",
        "crm.support.ticket_resolved",
        "crm.customers.consent_changed",
        "crm.reporting.scheduled_report_ready",
    ),
    "reporting": (
        "crm.leads.lead_captured",
        "crm.leads.lead_assigned",
        "crm.leads.lead_touched",
        "crm.sales.deal_closed",
        "crm.leads.campaign_changed",
        "crm.customers.customer_created",
        "crm.orders.order_created",
        "crm.orders.order_shipped",
        "crm.notifications.notification_sent",
        "crm.notifications.notification_failed",
        "crm.support.ticket_opened",
        "crm.support.ticket_resolved",
        "crm.support.ticket_sla_breached",
        "crm.support.survey_answered",
        "crm.customers.consent_changed",
        # the speed-to-lead curve (first responses) and the funnel (deals opened, stages entered)
        "crm.leads.activity_logged",
        "crm.leads.lead_converted",
        "crm.sales.deal_stage_changed",
    ),
}
SERVICES: tuple[str, ...] = (*CONSUMES, GATEWAY)
IDENTITIES: tuple[str, ...] = (*SERVICES, PROVISIONER)

REPLAYS = "replays"


class NatsAccessError(ValueError):
    """A NATS identity or permission that cannot be right (unknown identity, missing credentials)."""


def durable_name(service: str, subject: str) -> str:
    """The durable consumer (and inbox) of `service` on `subject`: `<service>-<event>`, stable
    across releases so a rolling update neither re-reads nor skips."""
    return f"{service}-{subject.split('.', 2)[2].replace('_', '-')}"


def producer_of(subject: str) -> str:
    """The service that publishes `subject` (`crm.<producer>.<event>`)."""
    return subject.split(".", 2)[1]


def group_durable(service: str, producer: str) -> str:
    """The one durable consumer through which `service` reads every event it consumes from
    `producer`: `<service>-from-<producer>`. (Each event's inbox and metrics keep its own
    `durable_name`, so moving from one consumer per event to one per producer re-applies nothing.)"""
    return f"{service}-from-{producer}"


def consumer_groups(service: str, subjects: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """`service`'s durable consumers for `subjects`: one per producer, with that producer's
    subjects (sorted, so the same table always gives the same consumer)."""
    groups: dict[str, list[str]] = {}
    for subject in sorted(set(subjects)):
        groups.setdefault(group_durable(service, producer_of(subject)), []).append(subject)
    return {durable: tuple(found) for durable, found in groups.items()}


def replay_durable(service: str) -> str:
    """The durable consumer through which `service` receives its own dead-letter replays."""
    return f"{service}-{REPLAYS}"


def replay_subject(service: str, durable: str) -> str:
    """Where `service` republishes a dead letter of its consumer `durable`: under its own subjects
    (it may not publish another service's event), read only by its own replay consumer."""
    return f"crm.{service}.{REPLAYS}.{durable}"


def inbox_prefix(identity: str) -> str:
    return f"_INBOX.{identity}"


def may_consume(service: str, subject: str) -> bool:
    """False only for a service of the table that does not list `subject` (others are tests')."""
    return service not in CONSUMES or subject in CONSUMES[service]


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def _consumer_rights(stream: str, durable: str) -> list[str]:
    """Read and acknowledge one's own durable consumer; never create or change it."""
    api = "$JS.API.CONSUMER"
    return [
        f"{api}.INFO.{stream}.{durable}",
        f"{api}.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def permissions(identity: str, stream: str = STREAM) -> Permissions:
    """What `identity` may publish and subscribe to (everything else is denied)."""
    inbox = (f"{inbox_prefix(identity)}.>",)
    kv = f"KV_{IDEMPOTENCY_BUCKET}"
    if identity == PROVISIONER:
        publish = [f"$JS.API.STREAM.{verb}.{name}" for name in (stream, kv) for verb in ("CREATE", "UPDATE", "INFO")]
        # The services' consumers (created with or without a filter token in the subject), and
        # the info of the consumers they replace (where a new one starts, `provision_consumers`).
        publish += [f"$JS.API.CONSUMER.CREATE.{stream}.>", f"$JS.API.CONSUMER.INFO.{stream}.*"]
        return Permissions(("$JS.API.INFO", *publish), inbox)
    if identity == GATEWAY:
        return Permissions(
            (
                f"$KV.{IDEMPOTENCY_BUCKET}.>",
                f"$JS.API.STREAM.INFO.{kv}",
                f"$JS.API.DIRECT.GET.{kv}.>",
                f"$JS.API.STREAM.MSG.GET.{kv}",
                "$JS.API.INFO",
            ),
            inbox,
        )
    if identity not in CONSUMES:
        raise NatsAccessError(f"no NATS permissions for {identity!r}; known: {', '.join(IDENTITIES)}")
    publish = [f"crm.{identity}.>", f"$JS.API.STREAM.INFO.{stream}"]
    consumed = CONSUMES[identity]
    for durable in consumer_groups(identity, consumed):
        publish += _consumer_rights(stream, durable)
    if consumed:
        publish += _consumer_rights(stream, replay_durable(identity))
    return Permissions(tuple(publish), inbox)


def authorization_config(
    passwords: Mapping[str, str], *, admin: tuple[str, str] | None = None, passwords_from_env: bool = False
) -> str:
    """The nats-server `authorization { users = [...] }` block for the identities in `passwords`.

    passwords_from_env: each value is the name of an environment variable of the nats-server
    process (rendered `$NAME`, resolved by the server), so the file itself holds no secret.
    admin: (user, password) of an unrestricted identity (the dev stack's and the tests' own tools).
    """
    users = []
    for identity, password in passwords.items():
        allowed = permissions(identity)
        secret = f"${password}" if passwords_from_env else json.dumps(password)
        users.append(
            f"    {{user: {json.dumps(identity)}, password: {secret}, permissions: {{\n"
            f"      publish: {{allow: {json.dumps(list(allowed.publish))}}},\n"
            f"      subscribe: {{allow: {json.dumps(list(allowed.subscribe))}}}\n"
            f"    }}}}"
        )
    if admin is not None:
        users.append(f"    {{user: {json.dumps(admin[0])}, password: {json.dumps(admin[1])}}}")
    return "authorization {\n  users = [\n" + ",\n".join(users) + "\n  ]\n}\n"


def has_credentials(settings: ServiceSettings) -> bool:
    """True when settings name an identity: user and password, a client certificate, or a URL
    with user information."""
    in_url = any(urlsplit(url.strip()).username for url in settings.nats_url.split(","))
    return bool(settings.nats_user or settings.nats_tls_cert_file or in_url)


def tls_context(settings: ServiceSettings) -> ssl.SSLContext | None:
    """The client TLS context for NATS, or None when settings name no TLS file."""
    if not (settings.nats_tls_ca_file or settings.nats_tls_cert_file):
        return None
    context = ssl.create_default_context(cafile=settings.nats_tls_ca_file or None)
    if settings.nats_tls_cert_file:
        context.load_cert_chain(settings.nats_tls_cert_file, settings.nats_tls_key_file)
    return context


def connect_options(settings: ServiceSettings) -> dict[str, Any]:
    """The `nats.connect` keyword arguments for settings' identity: servers, name, user and
    password, TLS, and the inbox prefix of the service (the only inboxes its permissions allow;
    the permission table names its users after the services). Production refuses to connect
    without credentials."""
    if settings.environment == "production" and not has_credentials(settings):
        raise NatsAccessError(
            "production refuses to connect to NATS without credentials: set CRM_NATS_USER and "
            "CRM_NATS_PASSWORD (or a client certificate, CRM_NATS_TLS_CERT_FILE and CRM_NATS_TLS_KEY_FILE)"
        )
    options: dict[str, Any] = {
        "servers": [url.strip() for url in settings.nats_url.split(",")],
        "name": f"crm-{settings.service_name}",
        "inbox_prefix": inbox_prefix(settings.service_name),
    }
    if settings.nats_user:
        options["user"] = settings.nats_user
        options["password"] = settings.nats_password
    context = tls_context(settings)
    if context is not None:
        options["tls"] = context
    return options


async def connect(settings: ServiceSettings, **overrides: Any) -> NatsClient:
    """Connect to NATS as settings' identity; overrides are further `nats.connect` options
    (timeouts, reconnect policy, callbacks)."""
    return await nats.connect(**{**connect_options(settings), **overrides})


async def connect_long_lived(settings: ServiceSettings, **overrides: Any) -> NatsClient:
    """A process's own connection: few attempts now (the caller is waiting, or retries with its
    own back-off), then, once connected, reconnect forever in the background."""
    nc = await connect(
        settings,
        **{"connect_timeout": 2, "max_reconnect_attempts": 1, "reconnect_time_wait": 1, **overrides},
    )
    nc.options["max_reconnect_attempts"] = -1
    return nc


def password_variable(identity: str) -> str:
    """The nats-server environment variable holding `identity`'s password in a cluster."""
    return f"CRM_NATS_PASSWORD_{identity.upper()}"


def password_secret(identity: str, system: str = "crm") -> str:
    """The Secret holding `identity`'s NATS user and password (keys `user`, `password`): the one
    the CRM's charts mount for the service, which the nats-server's environment reads too."""
    return f"{system}-{identity}-nats"


# The NATS operator's own user in a cluster: unrestricted (it deletes the durables a release
# replaces and purges what must be purged, which no CRM identity may), no CRM process uses it.
OPERATOR = "nats-admin"
OPERATOR_PASSWORD_VARIABLE = "NATS_ADMIN_PASSWORD"


def helm_values(system: str = "crm") -> dict[str, Any]:
    """The values that give the official NATS chart (nats-io/k8s, `nats`) every CRM identity: the
    `authorization` users with their permissions (merged into the server's config) and, in the
    server container's environment, each password from the identity's Secret. A password is a
    NATS config variable (`<< $NAME >>`, the chart's syntax for an unquoted value), so neither the
    values nor the rendered ConfigMap hold a secret. Last, the operator's unrestricted user
    (`OPERATOR`), its password from the Secret `nats-admin`."""
    users: list[dict[str, Any]] = []
    env: dict[str, Any] = {}
    for identity in IDENTITIES:
        allowed = permissions(identity)
        variable = password_variable(identity)
        users.append(
            {
                "user": identity,
                "password": f"<< ${variable} >>",
                "permissions": {
                    "publish": {"allow": list(allowed.publish)},
                    "subscribe": {"allow": list(allowed.subscribe)},
                },
            }
        )
        secret = {"name": password_secret(identity, system), "key": "password"}
        env[variable] = {"valueFrom": {"secretKeyRef": secret}}
    users.append({"user": OPERATOR, "password": f"<< ${OPERATOR_PASSWORD_VARIABLE} >>"})
    env[OPERATOR_PASSWORD_VARIABLE] = {"valueFrom": {"secretKeyRef": {"name": OPERATOR, "key": "password"}}}
    return {"config": {"merge": {"authorization": {"users": users}}}, "container": {"env": env}}


def main(argv: list[str] | None = None) -> None:
    """`python -m crm_kit.nats_access [config]`: print the nats-server `authorization` block of every
    CRM identity for a cluster, each password read by the server from its environment
    (`password_variable`), e.g. set from a Secret (docs/operations.md).

    `python -m crm_kit.nats_access helm-values`: the same users as values of the official NATS
    chart (JSON, a valid values file), each password from the Secret `crm-<identity>-nats`, and the
    operator's unrestricted `nats-admin` (Secret `nats-admin`).

    `python -m crm_kit.nats_access provision`: create or update the CRM stream and the gateway's
    Idempotency-Key bucket as the `provisioner` (CRM_NATS_URL, CRM_NATS_USER, CRM_NATS_PASSWORD,
    CRM_NATS_TLS_*, CRM_STREAM_*, CRM_IDEMPOTENCY_*): the Helm hook Job runs it before the services
    start."""
    parser = argparse.ArgumentParser(prog="python -m crm_kit.nats_access", description=main.__doc__)
    parser.add_argument("command", nargs="?", choices=("config", "helm-values", "provision"), default="config")
    args = parser.parse_args(argv)
    if args.command == "helm-values":
        print(json.dumps(helm_values(), indent=2))
        return
    if args.command == "provision":
        from crm_kit.bus import provision_streams  # the bus imports this module
        from crm_kit.logs import setup_logging
        from crm_kit.settings import ServiceSettings

        settings = ServiceSettings(service_name=PROVISIONER)
        setup_logging(settings.service_name, settings.log_level)
        asyncio.run(provision_streams(settings))
        return
    print(authorization_config({name: password_variable(name) for name in IDENTITIES}, passwords_from_env=True), end="")


if __name__ == "__main__":
    main()
