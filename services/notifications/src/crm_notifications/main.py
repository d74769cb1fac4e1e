"""Wiring of the notifications service: settings, SMS provider, customers client, consumer, gRPC."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from crm.customers.v1 import customers_pb2_grpc
from crm.customers.v1 import events_pb2 as customer_events
from crm.notifications.v1 import notifications_pb2, notifications_pb2_grpc, promotions_pb2, promotions_pb2_grpc
from crm.orders.v1 import events_pb2 as order_events
from crm.reporting.v1 import events_pb2 as reporting_events
from crm.reporting.v1 import reporting_pb2_grpc
from crm.support.v1 import events_pb2 as support_events
from crm_kit.company import CompanyCalendarSettings
from crm_kit.migrations import migrations_dir
from crm_kit.service import Service, run_cli
from crm_kit.settings import ServiceSettings
from crm_notifications import advertising, promotions
from crm_notifications.db import messaging
from crm_notifications.email_sender import SmtpConfig, SmtpEmailSender
from crm_notifications.grpc_api import NotificationsServicer
from crm_notifications.handlers import ShipmentNotifier, SurveyNotifier, on_consent_changed
from crm_notifications.kavenegar import KavenegarSmsProvider
from crm_notifications.kavenegar_poll import KavenegarPoller
from crm_notifications.promotion_runner import PromotionRunner, RunnerConfig
from crm_notifications.promotion_store import FrequencyCap
from crm_notifications.promotions_api import PromotionsServicer
from crm_notifications.report_mails import ReportMailer
from crm_notifications.sms_provider import SMS_GATEWAY_KINDS, SmsGateway, build_sms_gateway

MIGRATIONS_DIR = migrations_dir(__file__)


class NotificationsSettings(ServiceSettings, CompanyCalendarSettings):
    service_name: str = "notifications"
    # generic (our provider's /v1/messages API, the local fake's) or kavenegar (Iran's REST API).
    sms_provider: str = "generic"
    sms_base_url: str = "http://127.0.0.1:8090"
    sms_api_key: str = "dev-sms-key"
    sms_sender: str = "CRM"
    sms_timeout_seconds: float = Field(default=5.0, gt=0)
    # Shipments handled at once. Each holds at most one database connection at a time and one
    # keep-alive connection to the provider; the pool (2 × db_pool_size) keeps two for the gRPC
    # server and the relay, or a send would wait for a connection and fail.
    sms_concurrency: int = Field(default=16, ge=1, le=64)
    # Where the customer's survey link points: the console's public address (its /s/{token} page).
    survey_base_url: str = "http://localhost:8081"
    # The SMTP relay e-mail goes through; empty host: no e-mail (a survey then goes by SMS only).
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    # starttls (submission on 587), tls (implicit, 465) or none (a sink or a relay on the node).
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from_address: str = "crm@example.com"
    smtp_from_name: str = ""
    # A CA bundle for a relay with a private certificate; empty: the system's.
    smtp_ca_file: str = ""
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    # CRM_ADVERTISING_RULES: the country whose advertising rules an advertising message must meet
    # (IL, IR) or a rules file's path (crm_notifications.advertising).
    advertising_rules: str = "IL"
    # With CRM_SMS_PROVIDER=kavenegar: how often its delivery statuses and the sender line's inbox are read.
    kavenegar_poll_seconds: float = Field(default=15.0, gt=0, le=3600)
    # Who advertises, as an advertising message names them where the law asks (Israel's §30A).
    advertiser_name: str = "CRM Demo Ltd."
    advertiser_contact: str = "03-5550123"
    # Signs each promotion e-mail recipient's unsubscribe link (crm_notifications.promotions).
    unsubscribe_secret: str = "dev-unsubscribe-secret"
    # Where a recipient's one-click unsubscribe (RFC 8058) goes: the gateway's public address.
    public_api_base_url: str = "http://localhost:8080"
    # Promotions: recipients per batch (one transaction each way), messages handed to the provider
    # per second and at once, and how long a runner's lease on a promotion lasts unrenewed.
    promotion_batch_size: int = Field(default=500, ge=1, le=5000)
    promotion_rate_per_second: float = Field(default=100.0, gt=0, le=10_000)
    promotion_concurrency: int = Field(default=16, ge=1, le=64)
    promotion_lease_seconds: float = Field(default=60.0, ge=1)
    promotion_poll_seconds: float = Field(default=1.0, gt=0)
    # At most this many promotions per person and channel within promotion_frequency_days (0: no
    # cap); a recipient over it is recorded as suppressed ("frequency cap").
    promotion_frequency_cap: int = Field(default=3, ge=0, le=100)
    promotion_frequency_days: int = Field(default=7, ge=1, le=365)
    # No promotion batch starts in this daily window of the company's time zone ("21:00-08:00";
    # "": none). A promotion due inside it waits for its end.
    promotion_quiet_hours: str = ""
    # A promotion reaching more people than this waits for a manager's approval after scheduling.
    promotion_approval_above: int = Field(default=10_000, ge=0)
    # The runner's name on a promotion's lease: the pod (host) name, so a restarted container
    # resumes its promotion at once instead of waiting for its own lease to expire.
    promotion_runner_name: str = Field(default_factory=socket.gethostname)

    @field_validator("promotion_quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        promotions.quiet_hours(value)  # ValueError says how to write it
        return value

    @field_validator("sms_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in SMS_GATEWAY_KINDS:
            raise ValueError(f"one of {', '.join(SMS_GATEWAY_KINDS)}")
        return value

    @field_validator("advertising_rules")
    @classmethod
    def _known_rules(cls, value: str) -> str:
        advertising.load(value)  # refuse to start with rules that cannot be right
        return value

    @model_validator(mode="after")
    def _concurrency_within_the_pool(self) -> NotificationsSettings:
        if self.sms_concurrency > 2 * self.db_pool_size - 2:
            raise ValueError(
                f"sms_concurrency ({self.sms_concurrency}) must leave two of the pool's "
                f"{2 * self.db_pool_size} connections free: raise db_pool_size or lower it"
            )
        return self

    @model_validator(mode="after")
    def _credentials_only_over_tls(self) -> NotificationsSettings:
        if self.smtp_host and self.smtp_username and self.smtp_security == "none":
            raise ValueError("smtp_username is set with smtp_security=none: the password would cross the wire in clear")
        if self.smtp_host and "@" not in self.smtp_from_address:
            raise ValueError("smtp_from_address must be an e-mail address")
        return self

    def secrets(self) -> dict[str, str]:
        # The relay's password counts only when the relay wants a login.
        login = {"smtp_password": self.smtp_password} if self.smtp_host and self.smtp_username else {}
        return {
            **super().secrets(),
            "sms_api_key": self.sms_api_key,
            "unsubscribe_secret": self.unsubscribe_secret,
            **login,
        }

    def smtp(self) -> SmtpConfig | None:
        """The relay's configuration, or None when e-mail is off."""
        if not self.smtp_host:
            return None
        return SmtpConfig(
            host=self.smtp_host,
            port=self.smtp_port,
            from_address=self.smtp_from_address,
            from_name=self.smtp_from_name,
            username=self.smtp_username,
            password=self.smtp_password,
            security=self.smtp_security,
            ca_file=self.smtp_ca_file,
            timeout_seconds=self.smtp_timeout_seconds,
        )


async def setup(service: Service) -> None:
    settings = service.settings
    if not isinstance(settings, NotificationsSettings):
        raise TypeError("the notifications service needs NotificationsSettings")
    provider = build_sms_gateway(
        settings.sms_provider,
        settings.sms_base_url,
        settings.sms_api_key,
        timeout_seconds=settings.sms_timeout_seconds,
        max_connections=settings.sms_concurrency,
    )
    # The chassis' client settings (timeout, TLS); closed on shutdown.
    customers_channel = service.channel(settings.customers_addr)
    service.on_shutdown(provider.aclose)
    customers = customers_pb2_grpc.CustomersServiceStub(customers_channel)
    notifier = ShipmentNotifier(
        service.db,
        customers,
        provider,
        sender=settings.sms_sender,
        consumer=service.bus.durable_for(order_events.OrderShipped),
    )
    # Up to sms_concurrency shipments in flight (one slow provider answer holds no other), each
    # acked only after its outcome is recorded; exactly once by the intent key (handlers.py).
    service.bus.subscribe(
        order_events.OrderShipped, notifier.handle, transactional=False, concurrency=settings.sms_concurrency
    )
    smtp = settings.smtp()
    surveys = SurveyNotifier(
        service.db,
        customers,
        provider,
        sender=settings.sms_sender,
        consumer=service.bus.durable_for(support_events.TicketResolved),
        survey_base_url=settings.survey_base_url,
        email=SmtpEmailSender(smtp) if smtp else None,
    )
    # Surveys are few (one per resolved ticket): a handful in flight is plenty.
    service.bus.subscribe(
        support_events.TicketResolved, surveys.handle, transactional=False, concurrency=min(4, settings.sms_concurrency)
    )
    # Scheduled reports (reporting's ScheduledReportReady): one e-mail per recipient, with the files.
    reports = ReportMailer(
        service.db,
        SmtpEmailSender(smtp) if smtp else None,
        consumer=service.bus.durable_for(reporting_events.ScheduledReportReady),
    )
    service.bus.subscribe(reporting_events.ScheduledReportReady, reports.handle, transactional=False)
    service.grpc.add(
        notifications_pb2_grpc.add_NotificationsServiceServicer_to_server,
        NotificationsServicer(
            service.db,
            rules=advertising.load(settings.advertising_rules),
            advertiser=advertising.Advertiser(settings.advertiser_name, settings.advertiser_contact),
            unsubscribe_base_url=settings.survey_base_url,
            time_zone=settings.company_time_zone,
        ),
        notifications_pb2.DESCRIPTOR.services_by_name["NotificationsService"].full_name,
    )
    # Promotions keep SMTP sessions open: one per send in flight, each reused for many messages.
    bulk_email = SmtpEmailSender(smtp, sessions=settings.promotion_concurrency) if smtp else None
    if bulk_email is not None:
        service.on_shutdown(bulk_email.aclose)
    _promotions(service, settings, customers, provider, bulk_email)


def _promotions(
    service: Service,
    settings: NotificationsSettings,
    customers: customers_pb2_grpc.CustomersServiceStub,
    provider: SmsGateway,
    email: SmtpEmailSender | None,
) -> None:
    """Promotions: the API, the runner (a periodic job: replicas share promotions by lease) and
    the customers' marketing withdrawals they check before each batch."""
    rules = advertising.load(settings.advertising_rules)
    advertiser = advertising.Advertiser(settings.advertiser_name, settings.advertiser_contact)
    # A recipient's short tracked link: <short_link_url>/<code> (the gateway's /r/<code>).
    short_link_url = f"{settings.public_api_base_url.rstrip('/')}/r"
    servicer = PromotionsServicer(
        service.db,
        customers,
        provider,
        rules=rules,
        advertiser=advertiser,
        sms_sender=settings.sms_sender,
        unsubscribe_secret=settings.unsubscribe_secret.encode(),
        approval_above=settings.promotion_approval_above,
        time_zone=settings.company_time_zone,
        unsubscribe_page_url=settings.survey_base_url,
        short_link_url=short_link_url,
    )
    service.grpc.add(
        promotions_pb2_grpc.add_PromotionsServiceServicer_to_server,
        servicer,
        promotions_pb2.DESCRIPTOR.services_by_name["PromotionsService"].full_name,
    )
    runner = PromotionRunner(
        service.db,
        customers,
        provider,
        email,
        config=RunnerConfig(
            owner=settings.promotion_runner_name,
            batch_size=settings.promotion_batch_size,
            rate_per_second=settings.promotion_rate_per_second,
            concurrency=settings.promotion_concurrency,
            lease=timedelta(seconds=settings.promotion_lease_seconds),
            time_zone=settings.company_time_zone,
            sms_sender=settings.sms_sender,
            unsubscribe_page_url=settings.survey_base_url,
            one_click_url=f"{settings.public_api_base_url.rstrip('/')}/api/v1/public/unsubscribe",
            short_link_url=short_link_url,
            open_image_url=f"{settings.public_api_base_url.rstrip('/')}/o",
            frequency_cap=FrequencyCap(settings.promotion_frequency_cap, settings.promotion_frequency_days),
            quiet_hours=settings.promotion_quiet_hours,
        ),
        advertiser=advertiser,
        unsubscribe_secret=settings.unsubscribe_secret.encode(),
        # Each A/B variant's revenue, when a test's winner rule is revenue.
        reporting=reporting_pb2_grpc.ReportingServiceStub(service.channel(settings.reporting_addr)),
    )
    service.run_periodically("promotions", settings.promotion_poll_seconds, runner.run_all)
    service.run_periodically("opt-out-confirmations", 30.0, servicer.replies.resend_pending)
    # A receipt that came before its message's send was recorded waits in early_receipts.
    service.run_periodically("early-receipts", 2.0, servicer.replies.apply_early_receipts)
    service.bus.subscribe(customer_events.ConsentChanged, on_consent_changed)
    if isinstance(provider, KavenegarSmsProvider):
        # Kavenegar calls nobody back: its receipts and the sender line's replies are fetched.
        poller = KavenegarPoller(service.db, provider, servicer.replies, line_number=settings.sms_sender)
        service.run_periodically("kavenegar-reports", settings.kavenegar_poll_seconds, poller.poll)


def main() -> None:
    run_cli(NotificationsSettings, messaging, MIGRATIONS_DIR, setup)
