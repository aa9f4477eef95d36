"""The mail channel over STARTTLS and implicit TLS (SMTPS), with AUTH, against aiosmtpd using a
throw-away self-signed certificate (``verify: false``, as for a lab relay)."""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
from collections.abc import Iterator

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from kyoten.alerting.channels import load_builder
from kyoten.alerting.channels.base import ChannelResources, Notification
from kyoten.alerting.events import parse_event

from .conftest import SMTP_PASSWORD, SmtpSink, free_port, payload

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(d / "key.pem"),
            "-out",
            str(d / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    return ctx


def _auth(
    server: SMTP, session: object, envelope: object, mechanism: str, data: object
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.password.decode() == SMTP_PASSWORD
    return AuthResult(success=ok, handled=False)


class _SmtpsController(Controller):
    """aiosmtpd with TLS from the first byte (SMTPS, port 465 style)."""

    def factory(self) -> SMTP:
        # The whole session is TLS, but aiosmtpd only counts STARTTLS as "TLS" for AUTH.
        return SMTP(self.handler, authenticator=_auth, auth_require_tls=False)


@pytest.fixture(params=["starttls", "tls"])
def server(
    request: pytest.FixtureRequest, tls_context: ssl.SSLContext
) -> Iterator[tuple[str, int, SmtpSink]]:
    sink = SmtpSink()
    port = free_port()
    if request.param == "starttls":
        ctl: Controller = Controller(
            sink,
            hostname="127.0.0.1",
            port=port,
            tls_context=tls_context,
            require_starttls=True,
            authenticator=_auth,
            auth_require_tls=True,
        )
    else:
        ctl = _SmtpsController(sink, hostname="127.0.0.1", port=port, ssl_context=tls_context)
    ctl.start()
    yield request.param, port, sink
    ctl.stop()


async def test_mail_over_tls_with_auth(server: tuple[str, int, SmtpSink]) -> None:
    security, port, sink = server
    settings = {
        "host": "127.0.0.1",
        "port": port,
        "security": security,
        "verify": False,
        "username": "kyoten",
        "password": SMTP_PASSWORD,
        "from": "kyoten@example.com",
        "to": ["ops@example.com"],
        "timeout": 5,
    }
    async with aiohttp.ClientSession() as http:
        res = ChannelResources(http, logging.getLogger("test"))
        channel = load_builder("mail")("tls-mail", settings, res)
        receipt = await channel.send(Notification(parse_event(payload("88"))))  # type: ignore[union-attr]
        await channel.send(Notification(parse_event(payload("88", "recovery")), receipt))  # type: ignore[union-attr]
        await channel.aclose()
    assert len(sink.mails) == 2
    problem, recovery = sink.messages()
    assert recovery["In-Reply-To"] == problem["Message-ID"]
