"""The ingest service's tables: ingest policies, event definitions, write keys, request log.

Only this module knows SQLAlchemy. A workspace comes into being the first time ingest
hears of it: `ensure_workspace` writes its policy with the defaults and, in the same
transaction, the default taxonomy; both are idempotent across replicas racing to do it.
Dedup keys are not here: they live in the key-value store, with a TTL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mailwright.runtime.db import Database
from mailwright.runtime.requests import request_log_table
from mailwright.taxonomy import EventSpec, TaxonomyError, parse_event
from mailwright_ingest.policy import Policy, Unplanned
from mailwright_ingest.taxonomy import Definition, definition_id, spec_body

metadata = sa.MetaData()

policies = sa.Table(
    "ingest_policies",
    metadata,
    sa.Column("workspace", sa.String(64), primary_key=True),
    sa.Column("unplanned", sa.String(16), nullable=False),
    sa.Column("dedup_window_s", sa.Float, nullable=False),
    sa.Column("rate_per_second", sa.Float, nullable=False),
    sa.Column("burst", sa.Integer, nullable=False),
    sa.Column("max_past_s", sa.Float, nullable=False),
    sa.Column("max_future_s", sa.Float, nullable=False),
    sa.Column("allowed_origins", sa.JSON, nullable=False),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
)

definitions = sa.Table(
    "ingest_event_definitions",
    metadata,
    sa.Column("workspace", sa.String(64), primary_key=True),
    sa.Column("definition_id", sa.String(128), primary_key=True),
    sa.Column("event", sa.String(200), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
)

write_keys = sa.Table(
    "ingest_write_keys",
    metadata,
    sa.Column("workspace", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("key_prefix", sa.String(16), nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoke_time", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ux_ingest_write_keys_hash", "key_hash", unique=True),
)

request_log = request_log_table(metadata, "ingest")


@dataclass(frozen=True)
class StoredWriteKey:
    workspace: str
    key_id: str
    display_name: str
    key_prefix: str
    create_time: datetime
    revoke_time: datetime | None


@dataclass(frozen=True)
class Applied:
    """What `apply_taxonomy` did."""

    definitions: tuple[Definition, ...]
    created: int
    updated: int
    deleted: int


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _insert_ignoring_conflicts(engine: sa.Engine, table: sa.Table) -> Any:
    """`INSERT … ON CONFLICT DO NOTHING` in the dialect of `engine`."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


class IngestStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- workspaces and policies ------------------------------------------------------

    def ensure_workspace(self, workspace: str, policy: Policy, seed: Sequence[EventSpec]) -> bool:
        """Create the workspace's policy and seed its taxonomy unless it exists; True when
        this call created it."""
        now = datetime.now(UTC)
        with self.db.engine.begin() as conn:
            inserted = conn.execute(
                _insert_ignoring_conflicts(self.db.engine, policies)
                .values(workspace=workspace, update_time=now, **_policy_row(policy))
                .returning(policies.c.workspace)
            ).first()
            if inserted is None:
                return False
            if seed:
                conn.execute(
                    _insert_ignoring_conflicts(self.db.engine, definitions),
                    [_definition_row(workspace, spec, now) for spec in seed],
                )
            return True

    def get_policy(self, workspace: str) -> Policy | None:
        with self.db.reader.begin() as conn:
            row = conn.execute(sa.select(policies).where(policies.c.workspace == workspace)).first()
        return None if row is None else _policy(row)

    def put_policy(self, workspace: str, policy: Policy) -> Policy:
        row = _policy_row(policy)
        now = datetime.now(UTC)
        with self.db.engine.begin() as conn:
            updated = conn.execute(
                policies.update()
                .where(policies.c.workspace == workspace)
                .values(update_time=now, **row)
            )
            if updated.rowcount == 0:
                conn.execute(policies.insert().values(workspace=workspace, update_time=now, **row))
        return policy

    # -- event definitions ------------------------------------------------------------

    def all_definitions(self, workspace: str) -> list[Definition]:
        with self.db.reader.begin() as conn:
            rows = conn.execute(
                sa.select(definitions)
                .where(definitions.c.workspace == workspace)
                .order_by(definitions.c.definition_id)
            ).all()
        return [_definition(row) for row in rows]

    def list_definitions(
        self, workspace: str, after: str, limit: int, tag: str = ""
    ) -> list[Definition]:
        """Definitions with ids after `after`, in id order, at most `limit` (with `tag`)."""
        found: list[Definition] = []
        with self.db.reader.begin() as conn:
            query = (
                sa.select(definitions)
                .where(definitions.c.workspace == workspace, definitions.c.definition_id > after)
                .order_by(definitions.c.definition_id)
            )
            if not tag:
                query = query.limit(limit)
            for row in conn.execute(query):
                definition = _definition(row)
                if tag and tag not in definition.spec.tags:
                    continue
                found.append(definition)
                if len(found) >= limit:
                    break
        return found

    def get_definition(self, workspace: str, ident: str) -> Definition | None:
        with self.db.reader.begin() as conn:
            row = conn.execute(
                sa.select(definitions).where(
                    definitions.c.workspace == workspace, definitions.c.definition_id == ident
                )
            ).first()
        return None if row is None else _definition(row)

    def upsert_definition(self, workspace: str, spec: EventSpec) -> tuple[Definition, bool]:
        """Create or replace the definition of `spec.event`; True when it was created."""
        now = datetime.now(UTC)
        with self.db.engine.begin() as conn:
            created = self._put(conn, workspace, spec, now)
        return Definition(definition_id(spec.event), spec, now), created

    def delete_definition(self, workspace: str, ident: str) -> bool:
        with self.db.engine.begin() as conn:
            deleted = conn.execute(
                definitions.delete().where(
                    definitions.c.workspace == workspace, definitions.c.definition_id == ident
                )
            )
        return deleted.rowcount == 1

    def apply_taxonomy(
        self, workspace: str, specs: Sequence[EventSpec], prune: bool, dry_run: bool = False
    ) -> Applied:
        """Create or replace every definition of `specs`; with `prune`, delete the others.
        One transaction; with `dry_run` it is rolled back."""
        now = datetime.now(UTC)
        created = updated = deleted = 0
        connection = self.db.engine.connect()
        try:
            with connection.begin() as transaction:
                for spec in specs:
                    if self._put(connection, workspace, spec, now):
                        created += 1
                    else:
                        updated += 1
                if prune:
                    keep = [definition_id(spec.event) for spec in specs]
                    result = connection.execute(
                        definitions.delete().where(
                            definitions.c.workspace == workspace,
                            definitions.c.definition_id.not_in(keep),
                        )
                    )
                    deleted = result.rowcount or 0
                if dry_run:
                    transaction.rollback()
        finally:
            connection.close()
        applied = tuple(Definition(definition_id(s.event), s, now) for s in specs)
        return Applied(applied, created, updated, deleted)

    def _put(self, conn: sa.Connection, workspace: str, spec: EventSpec, now: datetime) -> bool:
        row = _definition_row(workspace, spec, now)
        changed = conn.execute(
            definitions.update()
            .where(
                definitions.c.workspace == workspace,
                definitions.c.definition_id == row["definition_id"],
            )
            .values(event=row["event"], body=row["body"], update_time=now)
        )
        if changed.rowcount == 1:
            return False
        try:
            with conn.begin_nested():
                conn.execute(definitions.insert().values(**row))
        except sa.exc.IntegrityError:
            # Another writer created it between our update and insert: replace theirs.
            conn.execute(
                definitions.update()
                .where(
                    definitions.c.workspace == workspace,
                    definitions.c.definition_id == row["definition_id"],
                )
                .values(event=row["event"], body=row["body"], update_time=now)
            )
            return False
        return True

    # -- write keys -------------------------------------------------------------------

    def create_write_key(
        self, workspace: str, key_id: str, display_name: str, key_hash: str, key_prefix: str
    ) -> StoredWriteKey:
        now = datetime.now(UTC)
        with self.db.engine.begin() as conn:
            conn.execute(
                write_keys.insert().values(
                    workspace=workspace,
                    key_id=key_id,
                    display_name=display_name,
                    key_hash=key_hash,
                    key_prefix=key_prefix,
                    create_time=now,
                    revoke_time=None,
                )
            )
        return StoredWriteKey(workspace, key_id, display_name, key_prefix, now, None)

    def list_write_keys(self, workspace: str, after: str, limit: int) -> list[StoredWriteKey]:
        with self.db.reader.begin() as conn:
            rows = conn.execute(
                sa.select(write_keys)
                .where(write_keys.c.workspace == workspace, write_keys.c.key_id > after)
                .order_by(write_keys.c.key_id)
                .limit(limit)
            ).all()
        return [_write_key(row) for row in rows]

    def revoke_write_key(self, workspace: str, key_id: str) -> StoredWriteKey | None:
        """Revoke the key (once: a second revocation keeps the first time)."""
        where = sa.and_(write_keys.c.workspace == workspace, write_keys.c.key_id == key_id)
        with self.db.engine.begin() as conn:
            conn.execute(
                write_keys.update()
                .where(where, write_keys.c.revoke_time.is_(None))
                .values(revoke_time=datetime.now(UTC))
            )
            row = conn.execute(sa.select(write_keys).where(where)).first()
        return None if row is None else _write_key(row)

    def find_write_key(self, key_hash: str) -> StoredWriteKey | None:
        with self.db.reader.begin() as conn:
            row = conn.execute(
                sa.select(write_keys).where(write_keys.c.key_hash == key_hash)
            ).first()
        return None if row is None else _write_key(row)


# -- rows ---------------------------------------------------------------------------------


def _policy_row(policy: Policy) -> dict[str, Any]:
    return {
        "unplanned": policy.unplanned.value,
        "dedup_window_s": policy.dedup_window.total_seconds(),
        "rate_per_second": policy.rate_per_second,
        "burst": policy.burst,
        "max_past_s": policy.max_past.total_seconds(),
        "max_future_s": policy.max_future.total_seconds(),
        "allowed_origins": list(policy.allowed_origins),
    }


def _policy(row: sa.Row[Any]) -> Policy:
    return Policy(
        unplanned=Unplanned(row.unplanned),
        dedup_window=timedelta(seconds=row.dedup_window_s),
        rate_per_second=row.rate_per_second,
        burst=row.burst,
        max_past=timedelta(seconds=row.max_past_s),
        max_future=timedelta(seconds=row.max_future_s),
        allowed_origins=tuple(row.allowed_origins),
    )


def _definition_row(workspace: str, spec: EventSpec, now: datetime) -> dict[str, Any]:
    return {
        "workspace": workspace,
        "definition_id": definition_id(spec.event),
        "event": spec.event,
        "body": spec_body(spec),
        "update_time": now,
    }


def _definition(row: sa.Row[Any]) -> Definition:
    try:
        spec = parse_event(row.event, row.body)
    except TaxonomyError as error:
        # Only this module writes the rows, from checked specs: a bad row is corruption.
        raise ValueError(
            f"stored definition {row.definition_id!r} is unreadable: {error}"
        ) from None
    return Definition(row.definition_id, spec, _utc(row.update_time))


def _write_key(row: sa.Row[Any]) -> StoredWriteKey:
    return StoredWriteKey(
        workspace=row.workspace,
        key_id=row.key_id,
        display_name=row.display_name,
        key_prefix=row.key_prefix,
        create_time=_utc(row.create_time),
        revoke_time=_utc(row.revoke_time) if row.revoke_time is not None else None,
    )
