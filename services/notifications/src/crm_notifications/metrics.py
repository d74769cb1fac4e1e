"""Business metrics of notifications."""

from prometheus_client import Counter

from crm_notifications import domain

SMS_SENT = Counter("crm_sms_sent_total", "SMS accepted by the provider")
SMS_FAILED = Counter("crm_sms_failed_total", "SMS not sent (suppressed or rejected)", ["reason"])
# Every reason exported from 0, so rate()/increase() (the failure-ratio alert) see the first failure.
for _reason in (*domain.SuppressionReason, domain.PROVIDER_REJECTED):
    SMS_FAILED.labels(domain.metric_reason(_reason))

EMAIL_SENT = Counter("crm_email_sent_total", "E-mails accepted by the SMTP relay")
EMAIL_FAILED = Counter("crm_email_failed_total", "E-mails not sent (refused by the relay)", ["reason"])
EMAIL_FAILED.labels(domain.metric_reason(domain.PROVIDER_REJECTED))

PROMOTION_MESSAGES = Counter(
    "crm_promotion_messages_total", "Promotion messages by channel and outcome (sent, failed)", ["channel", "outcome"]
)
for _channel in (domain.SMS, domain.EMAIL):
    for _outcome in ("sent", "failed"):
        PROMOTION_MESSAGES.labels(_channel, _outcome)
OPT_OUTS = Counter(
    "crm_opt_outs_total", "Refusals of advertising received, by channel and source", ["channel", "source"]
)
# A refusal comes by reply (SMS) or by the e-mail's unsubscribe link.
for _channel, _source in ((domain.SMS, "sms_reply"), (domain.EMAIL, "unsubscribe_link")):
    OPT_OUTS.labels(_channel, _source)
# What delivery receipts said of the SMS they settled (the dashboard's delivery rate).
DELIVERY_RECEIPTS = Counter(
    "crm_delivery_receipts_total", "Delivery receipts that settled a message, by status", ["status"]
)
for _status in ("delivered", "undelivered"):
    DELIVERY_RECEIPTS.labels(_status)

REPORT_MAILS = Counter(
    "crm_report_mails_total", "Scheduled reports' e-mails by outcome (sent, failed: refused by the relay)", ["outcome"]
)
for _outcome in ("sent", "failed"):
    REPORT_MAILS.labels(_outcome)
