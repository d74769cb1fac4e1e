"""E-mail over SMTP: one message per send, to the relay the operator configures (STARTTLS or
implicit TLS, AUTH when a user is set), as multipart text + HTML in UTF-8.

SMTP has no idempotency key. The message's Message-ID is derived from the intent's key, so the
rare copy (the relay accepted, the process died before the outcome was recorded, the redelivery
sends again) carries the same Message-ID, which mail stores and clients fold into one message.
That window is the same as the SMS's before its provider answers; there the provider's key
removes the copy, here the Message-ID does for the reader.

Replies: a 4xx (greylisting, a full queue, 421 closing), a dropped or refused connection and a
timeout are transient (retried here, then by the event's redelivery). An authentication failure is
treated as transient too: it is the relay's configuration, not the message, that is wrong, and the
message must wait for the fix rather than be dropped (it ends as a dead letter, replayable, if it
lasts). A 5xx for the recipient or the data (550 no such user, 552, 554) is permanent.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Literal

import aiosmtplib
from opentelemetry import trace

from crm_kit import telemetry
from crm_notifications.outbound import PermanentSendError, RetryPolicy, SendReceipt, TransientSendError, with_retries

Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    from_address: str
    from_name: str = ""
    username: str = ""
    password: str = ""
    # "starttls" (submission, 587: upgrade before AUTH, refuse a server without it), "tls" (465,
    # implicit TLS) or "none" (a local sink or a relay on the node only).
    security: Security = "starttls"
    # A CA bundle for a relay with a private certificate; empty: the system's.
    ca_file: str = ""
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class Attachment:
    file_name: str
    # type/subtype, e.g. application/pdf.
    media_type: str
    content: bytes


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    html: str
    language: str
    # Extra headers (List-Unsubscribe for campaigns, Auto-Submitted for surveys).
    headers: tuple[tuple[str, str], ...] = ()
    # Files after the text and HTML (a scheduled report's PDF and chart).
    attachments: tuple[Attachment, ...] = ()


def message_id(idempotency_key: str, from_address: str) -> str:
    """A stable Message-ID per intent: the same key always gives the same id."""
    domain = from_address.rpartition("@")[2] or "crm.invalid"
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}@{domain}>"


def build_message(config: SmtpConfig, email: Email, idempotency_key: str) -> EmailMessage:
    """The MIME message: text first, HTML as the alternative readers prefer, then any files
    (the message becomes multipart/mixed)."""
    msg = EmailMessage()
    msg["From"] = formataddr((config.from_name, config.from_address)) if config.from_name else config.from_address
    msg["To"] = email.to
    msg["Subject"] = email.subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id(idempotency_key, config.from_address)
    msg["Content-Language"] = email.language
    for name, value in email.headers:
        msg[name] = value
    msg.set_content(email.text, charset="utf-8")
    msg.add_alternative(email.html, subtype="html", charset="utf-8")
    for attachment in email.attachments:
        maintype, _, subtype = attachment.media_type.partition("/")
        msg.add_attachment(attachment.content, maintype=maintype, subtype=subtype, filename=attachment.file_name)
    return msg


class SmtpEmailSender:
    """Sends one e-mail per call. With `sessions` 0 each send opens its own SMTP session (surveys
    are few); a promotion's sender keeps up to `sessions` sessions open and reuses each for
    `messages_per_session` messages (relays cap a session's messages; a session that errs is
    dropped), which saves the connection, TLS handshake and login of every message."""

    def __init__(
        self,
        config: SmtpConfig,
        *,
        retry: RetryPolicy | None = None,
        sessions: int = 0,
        messages_per_session: int = 100,
    ) -> None:
        self.config = config
        self._retry = retry or RetryPolicy()
        self._sessions = sessions
        self._messages_per_session = messages_per_session
        # Open sessions not in use, each with the messages it has carried.
        self._idle: list[tuple[aiosmtplib.SMTP, int]] = []
        self._gate = asyncio.Semaphore(sessions) if sessions else None
        # How long one delivery may hold an e-mail's send claim: longer than every attempt's
        # timeout and back-off together, so a slow relay is never raced by a second send.
        self.claim_lease = timedelta(
            seconds=self._retry.attempts * (config.timeout_seconds * 3 + self._retry.backoff_max_seconds) + 5
        )
        self._tls: ssl.SSLContext | None = None
        if config.security != "none":
            self._tls = ssl.create_default_context(cafile=config.ca_file or None)

    async def send(self, email: Email, *, idempotency_key: str) -> SendReceipt:
        """Send one e-mail; returns its Message-ID. Raises TransientSendError or PermanentSendError."""
        message = build_message(self.config, email, idempotency_key)
        return await with_retries(self._retry, lambda: self._submit(message))

    def _client(self) -> aiosmtplib.SMTP:
        c = self.config
        return aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            username=c.username or None,
            password=c.password or None,
            use_tls=c.security == "tls",
            start_tls=c.security == "starttls",
            tls_context=self._tls,
            timeout=c.timeout_seconds,
        )

    async def _over_session(self, message: EmailMessage) -> None:
        """Send over an open session (one is opened when none is idle); the session goes back for
        the next message unless it erred or carried its share."""
        assert self._gate is not None
        async with self._gate:
            client, carried = self._idle.pop() if self._idle else (self._client(), 0)
            try:
                if not client.is_connected:
                    await client.connect()
                await client.send_message(message)
            except BaseException:
                client.close()
                raise
            if carried + 1 >= self._messages_per_session:
                await _quit(client)
            else:
                self._idle.append((client, carried + 1))

    async def aclose(self) -> None:
        """Close the idle sessions."""
        idle, self._idle = self._idle, []
        for client, _ in idle:
            await _quit(client)

    async def _submit(self, message: EmailMessage) -> str:
        try:
            with telemetry.tracer(__name__).start_as_current_span("email.send", kind=trace.SpanKind.CLIENT):
                if self._gate is not None:
                    await self._over_session(message)
                else:
                    await self._send_alone(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            error = f"the relay refused the recipient: {'; '.join(f'{r.code} {r.message}' for r in exc.recipients)}"
            raise (TransientSendError if all(400 <= code < 500 for code in codes) else PermanentSendError)(
                error
            ) from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise TransientSendError(f"the relay refused our credentials: {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            error = f"the relay answered {exc.code} {exc.message}"
            raise (TransientSendError if exc.code < 500 else PermanentSendError)(error) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Connection refused or dropped, a timeout, a relay without STARTTLS: try again later.
            raise TransientSendError(f"the relay is unreachable: {exc!r}") from exc
        return str(message["Message-ID"])

    async def _send_alone(self, message: EmailMessage) -> None:
        c = self.config
        await aiosmtplib.send(
            message,
            hostname=c.host,
            port=c.port,
            username=c.username or None,
            password=c.password or None,
            use_tls=c.security == "tls",
            start_tls=c.security == "starttls",
            tls_context=self._tls,
            timeout=c.timeout_seconds,
        )


async def _quit(client: aiosmtplib.SMTP) -> None:
    """End a session politely; a relay that already hung up is closed all the same."""
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
