"""A local SMTP sink: the true edge of e-mail, keeping every message it receives and showing it.

Run it with ``python -m crm_devstack.mail_sink --smtp-port 8025 --http-port 8026``.

SMTP on ``--smtp-port``: accepts any sender and recipient (AUTH PLAIN/LOGIN with ``--user`` and
``--password`` when given; STARTTLS with ``--tls-cert`` and ``--tls-key``, then required before
AUTH). HTTP on ``--http-port``:

- ``GET /`` — the messages for a person: subject, sender, recipients, time, text, and the HTML part
  as it would render (in a sandboxed frame).
- ``GET /messages`` — every message as JSON, in the order received (headers, text and HTML parts,
  attachments with their content in base64).
- ``POST /control/fail-next`` ``{"count": N, "code": 451}`` — the next N recipients are refused
  with that SMTP code (4xx: try later; 5xx: refused for good).
- ``POST /control/reset`` — forget everything.
- ``GET /healthz`` — liveness.
"""

from __future__ import annotations

import argparse
import base64
import html
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

MAX_MESSAGES = 10_000
# Messages whose attachments keep their content; older ones keep names and sizes (bounded memory).
KEEP_FILES_OF = 200


class ReceivedAttachment(BaseModel):
    file_name: str
    media_type: str
    size: int
    # The file, base64 (a sink keeps what a test or a developer opens).
    content_base64: str


class ReceivedMail(BaseModel):
    mail_from: str
    rcpt_to: list[str]
    message_id: str
    subject: str
    headers: dict[str, str]
    text: str
    html: str
    received_at: datetime
    # Whether the session was over TLS and who logged in (empty: nobody).
    tls: bool
    login: str
    attachments: list[ReceivedAttachment] = []


class FailNextRequest(BaseModel):
    count: int = Field(ge=0, le=10_000)
    code: int = Field(default=451, ge=400, le=599)


@dataclass
class SinkState:
    """What the sink received; every access holds ``lock`` (SMTP runs on its own thread)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    messages: list[ReceivedMail] = field(default_factory=list)
    fail_remaining: int = 0
    fail_code: int = 451

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.fail_remaining = 0


def _attachments(message: EmailMessage) -> list[ReceivedAttachment]:
    found = []
    for part in message.iter_attachments():
        assert isinstance(part, EmailMessage)
        content = part.get_payload(decode=True)
        data = content if isinstance(content, bytes) else b""
        found.append(
            ReceivedAttachment(
                file_name=part.get_filename() or "",
                media_type=part.get_content_type(),
                size=len(data),
                content_base64=base64.b64encode(data).decode(),
            )
        )
    return found


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    return str(body.get_content()) if body is not None else ""


class _Handler:
    def __init__(self, state: SinkState) -> None:
        self.state = state

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        with self.state.lock:
            if self.state.fail_remaining > 0:
                self.state.fail_remaining -= 1
                code = self.state.fail_code
                return f"{code} {'4.3.0 try again later' if code < 500 else '5.1.1 mailbox unavailable'}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else ""
        mail = ReceivedMail(
            mail_from=envelope.mail_from,
            rcpt_to=list(envelope.rcpt_tos),
            message_id=str(parsed.get("Message-ID", "")),
            subject=str(parsed.get("Subject", "")),
            headers={k: str(v) for k, v in parsed.items()},
            text=_part(parsed, "plain"),
            html=_part(parsed, "html"),
            received_at=datetime.now(UTC),
            tls=session.ssl is not None,
            login=login,
            attachments=_attachments(parsed),
        )
        with self.state.lock:
            self.state.messages.append(mail)
            del self.state.messages[:-MAX_MESSAGES]
            if len(self.state.messages) > KEEP_FILES_OF:
                for attachment in self.state.messages[-KEEP_FILES_OF - 1].attachments:
                    attachment.content_base64 = ""
        return "250 Message accepted"


class _Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            self.user,
            self.password,
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def smtp_controller(
    state: SinkState,
    *,
    host: str,
    port: int,
    user: str = "",
    password: str = "",
    tls_cert: str = "",
    tls_key: str = "",
) -> Controller:
    """The SMTP server (not started): AUTH only with a user, STARTTLS only with a certificate."""
    options: dict[str, Any] = {}
    if tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls_cert, tls_key)
        options.update(tls_context=context, require_starttls=False)
    if user:
        options.update(authenticator=_Authenticator(user, password), auth_require_tls=bool(tls_cert))
    return Controller(_Handler(state), hostname=host, port=port, **options)


def create_app(state: SinkState) -> FastAPI:
    app = FastAPI(title="Local SMTP sink", version="1.0")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/messages", response_model=list[ReceivedMail])
    async def list_messages() -> list[ReceivedMail]:
        with state.lock:
            return list(state.messages)

    @app.get("/", response_class=HTMLResponse)
    async def inbox() -> str:
        with state.lock:
            mails = list(reversed(state.messages))
        items = "".join(
            f"<article><h2>{html.escape(m.subject)}</h2><p>{html.escape(m.mail_from)} → "
            f"{html.escape(', '.join(m.rcpt_to))} · {m.received_at:%Y-%m-%d %H:%M:%S} UTC</p>"
            f"<pre>{html.escape(m.text)}</pre>"
            + "".join(f"<p>📎 {html.escape(a.file_name)} ({a.size:,} bytes)</p>" for a in m.attachments)
            + (f'<iframe sandbox srcdoc="{html.escape(m.html, quote=True)}"></iframe>' if m.html else "")
            + "</article>"
            for m in mails
        )
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Local mail</title><style>'
            "body{font-family:sans-serif;margin:2rem}article{border-bottom:1px solid #ccc;padding:1rem 0}"
            "pre{white-space:pre-wrap;unicode-bidi:plaintext}iframe{width:100%;height:18rem;border:1px solid #ddd}"
            f"</style></head><body><h1>Local mail ({len(mails)})</h1>{items or '<p>No mail yet.</p>'}</body></html>"
        )

    @app.post("/control/fail-next")
    async def fail_next(request: FailNextRequest) -> dict[str, int]:
        with state.lock:
            state.fail_remaining = request.count
            state.fail_code = request.code
        return {"count": request.count, "code": request.code}

    @app.post("/control/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m crm_devstack.mail_sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=8025)
    parser.add_argument("--http-port", type=int, default=8026)
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--tls-cert", default="")
    parser.add_argument("--tls-key", default="")
    args = parser.parse_args(argv)
    state = SinkState()
    controller = smtp_controller(
        state,
        host=args.host,
        port=args.smtp_port,
        user=args.user,
        password=args.password,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    controller.start()
    try:
        uvicorn.run(create_app(state), host=args.host, port=args.http_port, log_level="info")
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
