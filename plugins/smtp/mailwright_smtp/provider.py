"""The SMTP email provider: prepare, sign, and send over a pooled connection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiosmtplib
from aiosmtplib import SMTPStatus

from mailwright.connectors import (
    ErrorKind,
    OutboundMessage,
    ProviderError,
    RateLimit,
    SendOutcome,
)
from mailwright_smtp.config import SmtpConfig
from mailwright_smtp.message import Prepared, prepare
from mailwright_smtp.pool import Connection, SmtpPool
from mailwright_smtp.replies import Phase, reply_error
from mailwright_smtp.signing import DkimKey, Signer

log = logging.getLogger(__name__)

MAX_BATCH_SIZE = 100


class _StaleConnection(Exception):
    """A reused connection turned out closed before the relay saw the message."""


class SmtpEmailProvider:
    """`EmailProvider` over SMTP with STARTTLS or TLS, AUTH, a connection pool and DKIM.

    The provider message id is the Message-ID (without angle brackets), which is derived
    from the idempotency key: bounces quoting it map back to the send.
    """

    max_batch_size = MAX_BATCH_SIZE

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self.rate_limit = RateLimit(
            per_second=config.rate_per_second, burst=config.burst, concurrency=config.pool_size
        )
        self._pool = SmtpPool(config)
        self._signer: Signer | None = None
        if config.dkim_domain and config.dkim_selector:
            key = DkimKey(
                config.dkim_domain, config.dkim_selector, config.dkim_key_pem(), config.dkim_headers
            )
            self._signer = Signer(key, config.dkim_processes)

    @property
    def connections_opened(self) -> int:
        return self._pool.connections_opened

    async def send(self, message: OutboundMessage) -> str:
        prepared = prepare(
            message,
            envelope_from=self.config.envelope_from,
            message_id_domain=self.config.message_id_domain,
        )
        data = prepared.data if self._signer is None else await self._signer.sign(prepared.data)
        try:
            await self._deliver(prepared, data)
        except ProviderError as error:
            log.debug("send %s failed: %s %s", message.send_id, error.kind.value, error.code)
            raise
        log.debug("sent %s as %s", message.send_id, prepared.message_id)
        return prepared.message_id.strip("<>")

    async def send_batch(self, messages: Sequence[OutboundMessage]) -> Sequence[SendOutcome]:
        # One sender per connection the pool may open, each taking the next message in
        # turn: the connections are kept busy without a task (and a wait on the pool) per
        # message.
        outcomes: list[SendOutcome | None] = [None] * len(messages)
        queue = iter(enumerate(messages))

        async def sender() -> None:
            for index, message in queue:
                try:
                    outcomes[index] = SendOutcome(
                        message.send_id, provider_message_id=await self.send(message)
                    )
                except ProviderError as error:
                    outcomes[index] = SendOutcome(message.send_id, error=error)

        # Every send finishes before an auth failure is raised: none is left half-done.
        await asyncio.gather(*(sender() for _ in range(min(self.config.pool_size, len(messages)))))
        done = [outcome for outcome in outcomes if outcome is not None]
        for outcome in done:
            if outcome.error is not None and outcome.error.kind is ErrorKind.AUTH:
                raise outcome.error
        return done

    async def aclose(self) -> None:
        await self._pool.aclose()
        if self._signer is not None:
            self._signer.close()

    async def _deliver(self, prepared: Prepared, data: bytes) -> None:
        # A reused connection may have been dropped by the relay while idle; that shows
        # at MAIL FROM, before the relay has anything, so another connection is safe.
        for _ in range(self.config.pool_size + 1):
            connection = await self._pool.acquire()
            reusable = False
            try:
                reusable, error = await self._transact(connection, prepared, data)
            except _StaleConnection:
                continue
            finally:
                await self._pool.release(connection, reusable=reusable)
            if error is not None:
                raise error
            return
        raise ProviderError(ErrorKind.TRANSIENT, "the relay keeps closing connections")

    async def _transact(
        self, connection: Connection, prepared: Prepared, data: bytes
    ) -> tuple[bool, ProviderError | None]:
        """Send on `connection`: whether it can be reused, and the error if refused."""
        client = connection.client
        connection.transactions += 1
        wait = self.config.rate_limited_retry_after
        phase = Phase.MAIL
        # MAIL and RCPT written directly: `prepare` already reduced both addresses to
        # bare ASCII mailboxes, which aiosmtplib's `mail` and `rcpt` would parse again.
        options = [b"SIZE=%d" % len(data)] if client.supports_extension("size") else []
        try:
            sender = prepared.envelope_from
            reply = await client.execute_command(
                b"MAIL", b"FROM:<" + sender.encode("ascii") + b">", *options
            )
            if reply.code != SMTPStatus.completed:
                raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender)
            phase = Phase.RCPT
            recipient = prepared.recipient
            reply = await client.execute_command(
                b"RCPT", b"TO:<" + recipient.encode("ascii") + b">"
            )
            if reply.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
                raise aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)
            phase = Phase.DATA
            await client.data(data)
        except aiosmtplib.SMTPResponseException as error:
            # 421: the relay is closing the session; anything else, RSET and go on.
            reusable = error.code != 421 and await _reset(client)
            return reusable, reply_error(error.code, error.message, phase, rate_limited_wait=wait)
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as error:
            if phase is Phase.MAIL and connection.transactions > 1:
                raise _StaleConnection from None
            detail = f"connection lost at {phase.value}: {error}"
            if phase is Phase.DATA:
                detail += " (the relay may have accepted the message)"
            return False, ProviderError(ErrorKind.TRANSIENT, detail)
        except aiosmtplib.SMTPTimeoutError as error:
            return False, ProviderError(ErrorKind.TRANSIENT, f"timeout at {phase.value}: {error}")
        connection.sent += 1
        return True, None


async def _reset(client: aiosmtplib.SMTP) -> bool:
    """RSET after a refused transaction; True when the session is fit for another."""
    if not client.is_connected:
        return False
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        return False
    return True
