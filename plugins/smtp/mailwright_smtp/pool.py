"""A small pool of SMTP connections to one relay.

Opening a connection costs a TCP handshake, a greeting, EHLO, STARTTLS and AUTH; a
message costs three round trips. So connections are kept and reused — up to
`max_messages_per_connection` messages each, and not after `idle_timeout` of silence,
when relays tend to have dropped them already.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable

import aiosmtplib

from mailwright.connectors import ErrorKind, ProviderError
from mailwright_smtp.config import SmtpConfig
from mailwright_smtp.replies import Phase, reply_error

log = logging.getLogger(__name__)


class Connection:
    """One open SMTP session, with how much it has been used."""

    def __init__(self, client: aiosmtplib.SMTP, number: int, now: float) -> None:
        self.client = client
        self.number = number
        self.sent = 0
        self.transactions = 0
        self.last_used = now

    @property
    def is_open(self) -> bool:
        return self.client.is_connected


class SmtpPool:
    """At most `pool_size` connections, reused while fresh."""

    def __init__(self, config: SmtpConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._slots = asyncio.Semaphore(config.pool_size)
        self._idle: list[Connection] = []
        self._opened = 0
        self._closed = False

    @property
    def connections_opened(self) -> int:
        """How many connections this pool has opened so far."""
        return self._opened

    async def acquire(self) -> Connection:
        """A fresh connection: an idle one if usable, else a new one."""
        if self._closed:
            raise ProviderError(ErrorKind.TRANSIENT, "the SMTP connector is closed")
        await self._slots.acquire()
        try:
            while self._idle:
                connection = self._idle.pop()
                if self._usable(connection):
                    return connection
                await _quit(connection)
            return await self._open()
        except BaseException:
            self._slots.release()
            raise

    async def release(self, connection: Connection, *, reusable: bool) -> None:
        """Give `connection` back; it is closed unless `reusable` and still usable."""
        try:
            connection.last_used = self._clock()
            if reusable and not self._closed and self._usable(connection):
                self._idle.append(connection)
            else:
                await _quit(connection)
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(connection) for connection in idle))

    def _usable(self, connection: Connection) -> bool:
        return (
            connection.is_open
            and connection.sent < self.config.max_messages_per_connection
            and self._clock() - connection.last_used < self.config.idle_timeout.total_seconds()
        )

    async def _open(self) -> Connection:
        config = self.config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.effective_port,
            use_tls=config.security == "tls",
            start_tls=False,  # done below, so that a relay without it is refused
            validate_certs=config.verify_certificate,
            cert_bundle=str(config.ca_file) if config.ca_file else None,
            local_hostname=config.local_hostname,
            timeout=config.timeout.total_seconds(),
        )
        try:
            await self._greet(client)
        except BaseException as error:
            client.close()
            if isinstance(error, ProviderError) or not isinstance(error, Exception):
                raise
            raise connect_error(error, config) from None
        self._opened += 1
        log.debug("smtp connection %d opened to %s", self._opened, config.host)
        return Connection(client, self._opened, self._clock())

    async def _greet(self, client: aiosmtplib.SMTP) -> None:
        config = self.config
        await client.connect()
        await client.ehlo()
        if config.security == "starttls":
            if not client.supports_extension("starttls"):
                raise ProviderError(
                    ErrorKind.AUTH, "the relay offers no STARTTLS and security is 'starttls'"
                )
            await client.starttls()
            await client.ehlo()  # the extensions offered may differ once encrypted
        if config.username is not None and config.password is not None:
            await client.login(config.username, config.password.get_secret_value())


def connect_error(error: Exception, config: SmtpConfig) -> ProviderError:
    """What a failure to connect, secure or log in means for the sender."""
    wait = config.rate_limited_retry_after
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return ProviderError(
            ErrorKind.AUTH, f"login refused: {error.code} {error.message}", code=str(error.code)
        )
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return reply_error(error.code, error.message, Phase.CONNECT, rate_limited_wait=wait)
    if isinstance(error, ssl.SSLError | aiosmtplib.SMTPNotSupported) or isinstance(
        error.__cause__, ssl.SSLError
    ):
        return ProviderError(ErrorKind.AUTH, f"TLS with the relay failed: {error}")
    if isinstance(error, aiosmtplib.SMTPException) and "authentication" in str(error).lower():
        return ProviderError(ErrorKind.AUTH, f"login impossible: {error}")
    return ProviderError(ErrorKind.TRANSIENT, f"cannot reach the relay: {error}")


async def _quit(connection: Connection) -> None:
    if not connection.is_open:
        return
    try:
        await connection.client.quit(timeout=2)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        connection.client.close()
