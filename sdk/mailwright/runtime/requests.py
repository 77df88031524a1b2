"""Idempotent mutating RPCs: a retried `request_id` gets the original response back.

Each service keeps a request log in its own database (`request_log_table`). A mutation
first reserves its `(workspace, method, request_id)`; a duplicate then receives the stored
response, a duplicate with a different request body is refused, and a duplicate that
arrives while the first is still running is told to retry (ABORTED). A reservation left
behind by a crash expires after `stale_after` and the request may run again. This follows
google.aip.dev/155.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

import sqlalchemy as sa
from google.protobuf.message import Message

from mailwright.errors import Aborted, InvalidArgument
from mailwright.runtime.db import Database

M = TypeVar("M", bound=Message)

MAX_REQUEST_ID = 128


def request_log_table(metadata: sa.MetaData, service: str) -> sa.Table:
    return sa.Table(
        f"{service}_request_log",
        metadata,
        sa.Column("workspace", sa.String(64), primary_key=True),
        sa.Column("method", sa.String(160), primary_key=True),
        sa.Column("request_id", sa.String(MAX_REQUEST_ID), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index(f"ix_{service}_request_log_created", "created_at"),
    )


def fingerprint(request: Message) -> str:
    """Hash of the request without its request_id (deterministic serialisation)."""
    copy = type(request)()
    copy.CopyFrom(request)
    if "request_id" in copy.DESCRIPTOR.fields_by_name:
        copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


class RequestLog:
    """The request log of one service."""

    def __init__(
        self, db: Database, table: sa.Table, *, stale_after: timedelta = timedelta(minutes=5)
    ) -> None:
        self.db = db
        self.table = table
        self.stale_after = stale_after
        self._settling: set[asyncio.Future[None]] = set()

    async def run(
        self,
        workspace: str,
        method: str,
        request: Message,
        response_type: type[M],
        compute: Callable[[], Awaitable[M]],
    ) -> M:
        """Run `compute` once per request id; replay its response to duplicates."""
        request_id: str = getattr(request, "request_id", "")
        if not request_id:
            return await compute()
        if len(request_id) > MAX_REQUEST_ID:
            raise InvalidArgument.field("request_id", f"longer than {MAX_REQUEST_ID} characters")
        key = (workspace, method, request_id)
        stored = await self.db.run(self._reserve, key, fingerprint(request))
        if stored is not None:
            return response_type.FromString(stored)
        work = asyncio.ensure_future(compute())
        try:
            response = await asyncio.shield(work)
        except asyncio.CancelledError:
            # The caller went away (its deadline passed, or it cancelled). The work goes
            # on — its database calls run in threads that a cancellation does not stop —
            # and its outcome is recorded when it ends, so that a retry with the same
            # request id gets this response instead of doing the work a second time.
            work.add_done_callback(partial(self._settle_later, key))
            raise
        except BaseException:
            await self.db.run(self._release, key)
            raise
        await self.db.run(self._complete, key, response.SerializeToString(deterministic=True))
        return response

    def _settle_later(self, key: tuple[str, str, str], work: asyncio.Future[Message]) -> None:
        if work.cancelled() or work.exception() is not None:
            settle = self.db.run(self._release, key)
        else:
            settle = self.db.run(
                self._complete, key, work.result().SerializeToString(deterministic=True)
            )
        task = asyncio.ensure_future(settle)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    def _reserve(self, key: tuple[str, str, str], digest: str) -> bytes | None:
        workspace, method, request_id = key
        table = self.table
        now = datetime.now(UTC)
        where = sa.and_(
            table.c.workspace == workspace,
            table.c.method == method,
            table.c.request_id == request_id,
        )
        with self.db.engine.begin() as conn:
            row = conn.execute(
                sa.select(table.c.fingerprint, table.c.response, table.c.created_at).where(where)
            ).first()
            if row is None:
                conn.execute(
                    table.insert().values(
                        workspace=workspace,
                        method=method,
                        request_id=request_id,
                        fingerprint=digest,
                        response=None,
                        created_at=now,
                    )
                )
                return None
            if row.fingerprint != digest:
                raise InvalidArgument.field(
                    "request_id", "was already used for a different request"
                )
            if row.response is not None:
                return bytes(row.response)
            created = row.created_at
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            if now - created < self.stale_after:
                raise Aborted("a request with this request_id is still in progress; retry")
            conn.execute(table.update().where(where).values(created_at=now))
            return None

    def _complete(self, key: tuple[str, str, str], response: bytes) -> None:
        workspace, method, request_id = key
        table = self.table
        with self.db.engine.begin() as conn:
            conn.execute(
                table.update()
                .where(
                    table.c.workspace == workspace,
                    table.c.method == method,
                    table.c.request_id == request_id,
                )
                .values(response=response)
            )

    def _release(self, key: tuple[str, str, str]) -> None:
        workspace, method, request_id = key
        table = self.table
        with self.db.engine.begin() as conn:
            conn.execute(
                table.delete().where(
                    table.c.workspace == workspace,
                    table.c.method == method,
                    table.c.request_id == request_id,
                    table.c.response.is_(None),
                )
            )

    def prune(self, older_than: timedelta = timedelta(days=7)) -> int:
        cutoff = datetime.now(UTC) - older_than
        with self.db.engine.begin() as conn:
            result = conn.execute(self.table.delete().where(self.table.c.created_at < cutoff))
            return result.rowcount or 0
