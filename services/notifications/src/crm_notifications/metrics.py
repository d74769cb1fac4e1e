"""Business metrics of notifications."""

from prometheus_client import Counter

SMS_SENT = Counter("crm_sms_sent_total", "SMS accepted by the provider")
SMS_FAILED = Counter("crm_sms_failed_total", "SMS not sent (suppressed or rejected)", ["reason"])
