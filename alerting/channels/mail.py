"""E-mail channel (aiosmtplib): text + HTML, threaded by deterministic Message-IDs.

One SMTP session is kept open between mails (reopened after a failure or when idle), because a
session per mail costs more than the mail during a burst.

The problem mail's Message-ID is derived from the event id, so follow-ups can point
``In-Reply-To``/``References`` at it without any lookup, and carry ``Re: <problem subject>``
because Gmail also wants a similar subject before it threads. Follow-ups get a Message-ID derived
from their dedup key: if the pipeline ever sends a mail twice (the crash window documented in
:mod:`kyoten.alerting.outbox`), both copies share one Message-ID and mail clients fold them.

Settings: ``host``, ``port`` (default by security: 25 / 587 / 465), ``security``
(``none`` | ``starttls`` | ``tls``), ``username``, ``password``, ``from``, ``to`` (list),
``timeout`` (s, default 30), ``verify`` (TLS certificate check, default true),
``domain`` (right-hand side of Message-IDs; default the sender's domain).

Order: a follow-up threads by the problem's deterministic Message-ID, so it threads even when
it reaches the mailbox before the problem mail (the pipeline holds it back for a while first).
A problem whose event is already resolved when it is sent says so in its body; its subject
stays the thread's subject. Subjects longer than :data:`SUBJECT_MAX` characters are truncated
with a visible marker; bodies are sent whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import ssl
import time
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib

from .. import grouping, render
from ..events import Event, Kind
from ..templating import Renderer, Text
from .base import ChannelError, ChannelResources, Notification, Receipt
from .settings import MAIL, check

#: Longest subject, in characters: long ones are folded over many header lines and cut by
#: clients anyway. The body has no such limit (the MIME encoder wraps long lines).
SUBJECT_MAX = 200
#: A session idle longer than this is reopened rather than trusted (servers drop idle ones).
IDLE_RECONNECT = 20.0


def problem_message_id(event_id: str, domain: str) -> str:
    """The Message-ID of the problem mail of ``event_id``."""
    return f"<kyoten.{event_id}.problem@{domain}>"


def followup_message_id(event: Event, domain: str) -> str:
    """A Message-ID stable across re-sends of the same follow-up."""
    digest = hashlib.sha256(event.dedup_key.encode()).hexdigest()[:16]
    return f"<kyoten.{event.event_id}.{event.kind.value}.{digest}@{domain}>"


def classify(exc: Exception) -> ChannelError:
    """Map an SMTP failure to retryable (4xx, network) or permanent (5xx, refusals)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        return ChannelError(
            f"SMTP recipients refused ({', '.join(map(str, codes))})",
            retryable=all(400 <= c < 500 for c in codes),
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return ChannelError(
            f"SMTP {exc.code} {exc.message[:200]}".strip(), retryable=400 <= exc.code < 500
        )
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return ChannelError("SMTP timeout", retryable=True)
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected | OSError):
        return ChannelError(f"SMTP connection failed ({type(exc).__name__})", retryable=True)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return ChannelError(f"SMTP server lacks a needed feature: {exc}", retryable=False)
    return ChannelError(f"SMTP error ({type(exc).__name__})", retryable=True)


class MailChannel:
    """Sends one mail per notification; see the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        security: str,
        username: str,
        password: str,
        sender: str,
        to: tuple[str, ...],
        timeout: float,
        verify: bool,
        domain: str,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.security = security
        self._username = username
        self._password = password
        self.sender = sender
        self.to = to
        self.timeout = timeout
        self.verify = verify
        self.domain = domain
        self.renderer = Renderer(name)  # the channel's templates: set by the app
        self._smtp: aiosmtplib.SMTP | None = None
        self._last_used = 0.0

    def compose(self, n: Notification) -> EmailMessage:
        """The message for ``n`` (pure: no I/O), exposed for tests and previews."""
        event = n.event
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = formatdate(localtime=False)
        msg["X-Kyoten-Event"] = f"{event.event_id} {event.kind.value}"
        if n.digest:
            digest = self.renderer.digest_text(
                n.digest, Text(render.digest_title(n.digest), render.digest_text(n.digest))
            )
            msg["Subject"] = render.truncate(digest.subject, SUBJECT_MAX)
            msg["Message-ID"] = (
                "<kyoten.digest."
                + hashlib.sha256("|".join(e.dedup_key for e in n.digest).encode()).hexdigest()[:20]
                + f"@{self.domain}>"
            )
            msg.set_content(digest.body.lstrip("\n") + "\n")
            return msg
        if n.group is not None or grouping.RECEIPT_KEY in (n.thread or {}):
            from .mail_group import compose_group  # one incident, one mail thread

            return compose_group(self, n, msg)
        problem_id = problem_message_id(event.event_id, self.domain)
        body = render.text_body(event, resolved=n.resolved)
        if event.kind is Kind.PROBLEM:
            shaped = self.renderer.event_text(
                event, Text(render.thread_subject(event), body), resolved=n.resolved
            )
            msg["Subject"] = render.truncate(shaped.subject, SUBJECT_MAX)
            msg["Message-ID"] = problem_id
            body = shaped.body.lstrip("\n")
        else:
            subject = render.truncate(render.thread_subject(event), SUBJECT_MAX)
            msg["Subject"] = f"Re: {(n.thread or {}).get('subject') or subject}"
            msg["Message-ID"] = followup_message_id(event, self.domain)
            msg["In-Reply-To"] = problem_id
            msg["References"] = problem_id
            body = self.renderer.event_text(event, Text.of(body), resolved=n.resolved).full
        msg.set_content(body.rstrip("\n") + "\n")
        if self.renderer.is_default(event.kind.value):
            msg.add_alternative(render.html_body(event, resolved=n.resolved), subtype="html")
        else:  # the operator's text, as written, with the links
            msg.add_alternative(
                f"<html><body><pre>{html.escape(body)}</pre>{render.html_links(event)}"
                "</body></html>",
                subtype="html",
            )
        return msg

    async def _client(self) -> aiosmtplib.SMTP:
        """The open SMTP session, (re)connected when missing or idle too long."""
        now = time.monotonic()
        if self._smtp is not None and (
            not self._smtp.is_connected or now - self._last_used > IDLE_RECONNECT
        ):
            self._drop()
        if self._smtp is None:
            tls_context = None
            if not self.verify:
                tls_context = ssl.create_default_context()
                tls_context.check_hostname = False
                tls_context.verify_mode = ssl.CERT_NONE
            client = aiosmtplib.SMTP(
                hostname=self.host,
                port=self.port,
                username=self._username or None,
                password=self._password or None,
                use_tls=self.security == "tls",
                start_tls=self.security == "starttls",
                tls_context=tls_context,
                timeout=self.timeout,
            )
            await client.connect()  # STARTTLS and AUTH as configured
            self._smtp = client
        return self._smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    async def send(self, notification: Notification) -> Receipt | None:
        msg = self.compose(notification)
        try:
            client = await self._client()
            await client.send_message(msg)
        except Exception as exc:
            self._drop()  # whatever state the session is in, start afresh next time
            raise classify(exc) from None
        self._last_used = time.monotonic()
        if notification.event.kind is Kind.PROBLEM and not notification.digest:
            return {"message_id": str(msg["Message-ID"]), "subject": str(msg["Subject"])}
        return None

    async def aclose(self) -> None:
        if self._smtp is not None and self._smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException):
                await self._smtp.quit()
        self._drop()

    def __repr__(self) -> str:  # never show credentials
        return f"MailChannel({self.name!r}, {self.host}:{self.port}, {self.security})"


def build(name: str, settings: Mapping[str, Any], resources: ChannelResources) -> MailChannel:
    """Validate ``settings`` (:data:`.settings.MAIL`, every problem at once) and build."""
    v = check(MAIL, name, settings)
    return MailChannel(
        name,
        host=v["host"],
        port=v["port"],
        security=v["security"],
        username=v["username"],
        password=v["password"],
        sender=v["from"],
        to=v["to"],
        timeout=v["timeout"],
        verify=v["verify"],
        domain=v["domain"] or v["from"].rpartition("@")[2],
    )
