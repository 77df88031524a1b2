"""The segment catalog: saving, reading, previewing and explaining segments.

What the servicer calls, one method per use, each synchronous and run on the database's
thread pool. Saving a rule takes the workspace exclusively for a moment: the rule is
checked (schema, segments, cycles) against what is saved, its event specs are
materialised from the event log while no change is being applied, and a recompute job is
queued; the rule index of every replica follows through the workspace's segment epoch.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

import sqlalchemy as sa

from mailwright.errors import FailedPrecondition, NotFound
from mailwright.rules import ast
from mailwright.rules.check import Diagnostic, Severity
from mailwright.rules.errors import RuleSyntaxError, Span
from mailwright.rules.explain import Explanation, explain
from mailwright.rules.grammar import parse_located
from mailwright.rules.proto import to_proto
from mailwright.rules.tree import segment_references
from mailwright.runtime.db import snapshot_reads
from mailwright.segment.v1 import rule_pb2
from mailwright_segment.definitions import (
    CheckedRule,
    RuleContext,
    Segment,
    check_details,
    check_no_cycle,
    check_segment_id,
    read_rule,
    require_valid,
)
from mailwright_segment.engine import MembershipEngine
from mailwright_segment.incremental import compile_rule, next_change
from mailwright_segment.specs import specs_of
from mailwright_segment.store import memberships as membership_store
from mailwright_segment.store import projection
from mailwright_segment.store import segments as segment_store
from mailwright_segment.store.compile import Scope, count_query, members_query
from mailwright_segment.store.memberships import JobRow, LogEntry
from mailwright_segment.store.segments import SegmentRow
from mailwright_segment.taxonomy import rule_schema
from mailwright_segment.values import from_micros

MAX_SAMPLE = 1000


@dataclass(frozen=True)
class RuleInput:
    """A rule as a request gives it: text (preferred) or tree."""

    text: str = ""
    proto: rule_pb2.Rule | None = None


@dataclass(frozen=True)
class Preview:
    count: int
    sample: list[str]
    warnings: tuple[Diagnostic, ...]


@dataclass(frozen=True)
class ExplainResult:
    member: bool
    explanation: Explanation
    evaluated_at: int
    next_change: int | None


@dataclass(frozen=True)
class Validation:
    checked: CheckedRule | None
    issues: tuple[Diagnostic, ...]
    """Syntax errors as diagnostics (with their span), or the checker's findings."""


def _warnings_json(warnings: tuple[Diagnostic, ...]) -> str:
    return json.dumps(
        [
            {
                "code": d.code,
                "message": d.message,
                "path": list(d.path),
                "field": d.field,
                "span": None
                if d.span is None
                else [d.span.line, d.span.column, d.span.end_line, d.span.end_column],
            }
            for d in warnings
        ]
    )


def warnings_of(text: str) -> tuple[Diagnostic, ...]:
    return tuple(
        Diagnostic(
            Severity.WARNING,
            item["code"],
            item["message"],
            tuple(item["path"]),
            item["field"],
            None if item["span"] is None else Span(*item["span"]),
        )
        for item in json.loads(text)
    )


class SegmentCatalog:
    def __init__(self, engine: MembershipEngine, *, retention: timedelta) -> None:
        self.engine = engine
        self.db = engine.engine
        self.reader = engine.reader
        # Reads of several statements that must agree (a page with its total): one snapshot.
        self.snapshot = snapshot_reads(engine.engine)
        self.retention = retention

    # -- reading ------------------------------------------------------------------------
    def segment(self, row: SegmentRow, version: int = 0) -> Segment:
        text, data, warnings, updated = row.rule_text, row.rule, row.warnings, row.updated_at
        number = row.version
        if version and version != row.version:
            with self.reader.connect() as conn:
                found = segment_store.get_version(conn, row.pk, version)
            if found is None:
                raise NotFound(f'segment "{row.segment_id}" has no version {version}')
            text, data, warnings, updated = found
            number = version
        return Segment(
            row.ws,
            row.segment_id,
            row.display_name,
            row.description,
            row.tags,
            number,
            self.engine.rule_of(row.pk, number, data),
            text,
            warnings_of(warnings),
            row.created_at,
            updated,
            row.pk,
        )

    def get(self, ws: str, segment_id: str, version: int = 0) -> tuple[Segment, int]:
        with self.reader.connect() as conn:
            row = segment_store.get_segment(conn, ws, segment_id)
            if row is None:
                raise NotFound(f'segment "{segment_id}" not found')
            count = segment_store.member_counts(conn, [row.pk]).get(row.pk, 0)
        return self.segment(row, version), count

    def page(
        self, ws: str, after: str, limit: int, tag: str = ""
    ) -> tuple[list[tuple[Segment, int]], str]:
        """A page of segments after id `after`; returns them and the last id looked at."""
        found: list[SegmentRow] = []
        cursor = after
        with self.reader.connect() as conn:
            while len(found) < limit:
                rows = segment_store.list_segments(conn, ws, cursor, limit)
                if not rows:
                    cursor = ""
                    break
                for row in rows:
                    cursor = row.segment_id
                    if not tag or tag in row.tags:
                        found.append(row)
                        if len(found) == limit:
                            break
                if len(rows) < limit and len(found) < limit:
                    cursor = ""
                    break
            counts = segment_store.member_counts(conn, [r.pk for r in found])
        return [(self.segment(r), counts.get(r.pk, 0)) for r in found], cursor

    # -- checking -----------------------------------------------------------------------
    def context(self, conn: sa.Connection, ws: str) -> RuleContext:
        taxonomy, traits = rule_schema(projection.observed_types(conn, ws))
        return RuleContext(
            taxonomy, traits, set(segment_store.segment_ids(conn, ws)), self.retention
        )

    def validate(self, ws: str, rule: RuleInput) -> Validation:
        if rule.text:
            try:
                parse_located(rule.text)
            except RuleSyntaxError as error:
                span = Span(error.line, error.column, error.line, error.column)
                issue = Diagnostic(
                    Severity.ERROR, "syntax", error.message, (), ", ".join(error.expected), span
                )
                return Validation(None, (issue,))
        with self.reader.connect() as conn:
            checked = read_rule(rule.text or None, rule.proto, self.context(conn, ws), prefix="")
        return Validation(checked, (*checked.errors, *checked.warnings))

    def _checked(
        self, conn: sa.Connection, ws: str, segment_id: str, rule: RuleInput, prefix: str
    ) -> CheckedRule:
        context = self.context(conn, ws)
        checked = read_rule(rule.text or None, rule.proto, context, prefix=prefix)
        require_valid(checked, prefix)
        rules = {r.segment_id: r for r in segment_store.all_segments(conn, ws)}

        def lookup(other: str) -> ast.Rule | None:
            row = rules.get(other)
            return None if row is None else self.engine.rule_of(row.pk, row.version, row.rule)

        field = f"{prefix}.{checked.source_field}" if prefix else checked.source_field
        check_no_cycle(segment_id, checked.rule, lookup, field)
        return checked

    # -- saving -------------------------------------------------------------------------
    def create(
        self,
        ws: str,
        segment_id: str,
        display_name: str,
        description: str,
        tags: tuple[str, ...],
        rule: RuleInput,
    ) -> tuple[Segment, JobRow]:
        check_segment_id(segment_id)
        check_details(display_name, description, tags)
        now = self.engine.clock()
        with self.db.begin() as conn:
            row = projection.workspace(conn, ws, exclusive=True)
            checked = self._checked(conn, ws, segment_id, rule, "segment")
            data = to_proto(checked.rule).SerializeToString(deterministic=True)
            pk = segment_store.insert_segment(
                conn,
                SegmentRow(
                    0,
                    ws,
                    segment_id,
                    display_name or segment_id,
                    description,
                    tags,
                    1,
                    checked.text,
                    data,
                    _warnings_json(checked.warnings),
                    now,
                    now,
                ),
            )
            projection.ensure_specs(conn, ws, specs_of(checked.rule), now, row.pruned_before)
            segment_store.bump_epoch(conn, ws)
            job = self._queue(conn, ws, segment_id, "rule_change", now)
            saved = segment_store.get_segment_by_pk(conn, pk)
        assert saved is not None
        return self.segment(saved), job

    def update(
        self,
        ws: str,
        segment_id: str,
        *,
        display_name: str | None,
        description: str | None,
        tags: tuple[str, ...] | None,
        rule: RuleInput | None,
    ) -> tuple[Segment, int, JobRow | None]:
        now = self.engine.clock()
        with self.db.begin() as conn:
            row = projection.workspace(conn, ws, exclusive=True)
            current = segment_store.get_segment(conn, ws, segment_id, lock=True)
            if current is None:
                raise NotFound(f'segment "{segment_id}" not found')
            changed = replace(
                current,
                display_name=current.display_name if display_name is None else display_name,
                description=current.description if description is None else description,
                tags=current.tags if tags is None else tags,
            )
            check_details(changed.display_name, changed.description, changed.tags)
            job = None
            if rule is not None:
                checked = self._checked(conn, ws, segment_id, rule, "segment")
                data = to_proto(checked.rule).SerializeToString(deterministic=True)
                changed = replace(
                    changed,
                    rule=data,
                    rule_text=checked.text,
                    warnings=_warnings_json(checked.warnings),
                )
                if data != current.rule:
                    projection.ensure_specs(
                        conn, ws, specs_of(checked.rule), now, row.pruned_before
                    )
            saved = segment_store.update_segment(conn, current, changed, now)
            if saved.version != current.version:
                segment_store.bump_epoch(conn, ws)
                job = self._queue(conn, ws, segment_id, "rule_change", now)
            count = segment_store.member_counts(conn, [saved.pk]).get(saved.pk, 0)
        return self.segment(saved), count, job

    def delete(self, ws: str, segment_id: str) -> None:
        with self.db.begin() as conn:
            projection.workspace(conn, ws, exclusive=True)
            current = segment_store.get_segment(conn, ws, segment_id, lock=True)
            if current is None:
                raise NotFound(f'segment "{segment_id}" not found')
            users = [
                r.segment_id
                for r in segment_store.all_segments(conn, ws)
                if r.segment_id != segment_id
                and segment_id in segment_references(self.engine.rule_of(r.pk, r.version, r.rule))
            ]
            if users:
                raise FailedPrecondition(
                    f'segment "{segment_id}" is used by '
                    + ", ".join(f'"{u}"' for u in sorted(users))
                    + "; change or delete those first"
                )
            segment_store.delete_segment(conn, current.pk)
            segment_store.bump_epoch(conn, ws)

    # -- jobs ---------------------------------------------------------------------------
    def _queue(self, conn: sa.Connection, ws: str, segment_id: str, cause: str, now: int) -> JobRow:
        total = projection.profile_count(conn, ws)
        return membership_store.create_job(
            conn, ws, uuid.uuid4().hex[:16], segment_id, cause, total, now
        )

    def recompute(self, ws: str, segment_id: str) -> JobRow:
        now = self.engine.clock()
        with self.db.begin() as conn:
            if segment_store.get_segment(conn, ws, segment_id) is None:
                raise NotFound(f'segment "{segment_id}" not found')
            return self._queue(conn, ws, segment_id, "recompute", now)

    def job(self, ws: str, job_id: str) -> JobRow:
        with self.reader.connect() as conn:
            found = membership_store.get_job(conn, ws, job_id)
        if found is None:
            raise NotFound(f'recompute job "{job_id}" not found')
        return found

    # -- evaluating ---------------------------------------------------------------------
    def preview(self, ws: str, rule: RuleInput, sample: int) -> Preview:
        """How many people match an unsaved rule now, and the first of them."""
        now = self.engine.clock()
        with self.db.begin() as conn:
            row = projection.workspace(conn, ws, exclusive=True)
            checked = read_rule(rule.text or None, rule.proto, self.context(conn, ws), prefix="")
            require_valid(checked, prefix="")
            projection.ensure_specs(conn, ws, specs_of(checked.rule), now, row.pruned_before)
        dialect = self.db.dialect.name
        scope = Scope(ws, now)
        with self.reader.connect() as conn:
            count = int(conn.execute(count_query(checked.rule, scope, dialect)).scalar() or 0)
            ids: list[str] = []
            if sample:
                query = members_query(checked.rule, scope, dialect)
                ids = [r.profile_id for r in conn.execute(query.order_by("pk").limit(sample))]
        return Preview(count, ids, checked.warnings)

    def explain(self, ws: str, segment_id: str, profile_id: str) -> ExplainResult:
        now = self.engine.clock()
        with self.snapshot.begin() as conn:
            row = segment_store.get_segment(conn, ws, segment_id)
            if row is None:
                raise NotFound(f'segment "{segment_id}" not found')
            pk = projection.profile_key(conn, ws, profile_id)
            if pk is None:
                raise NotFound(f'profile "{profile_id}" is not known to the segment service')
            rule = self.engine.rule_of(row.pk, row.version, row.rule)
            person = projection.load_person(conn, ws, pk)
            plan = compile_rule(rule)
            coverage = projection.pruned_before(conn, ws)
            state = projection.load_state(
                conn, ws, pk, plan.spec_ids, emails=True, coverage=coverage
            )
            member = membership_store.member_flags(conn, pk, [row.pk]).get(row.pk, False)
        explanation = explain(rule, person, from_micros(now))
        return ExplainResult(member, explanation, now, next_change(plan, state, now))

    def members(
        self, ws: str, segment_id: str, after_pk: int, limit: int
    ) -> tuple[list[tuple[int, str, int]], int]:
        with self.snapshot.begin() as conn:
            row = segment_store.get_segment(conn, ws, segment_id)
            if row is None:
                raise NotFound(f'segment "{segment_id}" not found')
            found = membership_store.list_members(conn, row.pk, after_pk, limit)
            total = segment_store.member_counts(conn, [row.pk]).get(row.pk, 0)
        return found, total

    def last_log_id(self) -> int:
        with self.reader.connect() as conn:
            return membership_store.last_log_id(conn)

    def history(
        self, ws: str, after: int, since: int | None, segment_ids: list[str], limit: int
    ) -> list[LogEntry]:
        with self.reader.connect() as conn:
            return membership_store.history(
                conn, ws, after_id=after, since=since, segment_ids=segment_ids, limit=limit
            )

    # -- the outbox ---------------------------------------------------------------------
    def unpublished(self, ids: list[int] | None, limit: int = 500) -> list[LogEntry]:
        with self.reader.connect() as conn:
            return membership_store.unpublished(conn, ids, limit)

    def mark_published(self, entries: list[LogEntry]) -> None:
        with self.db.begin() as conn:
            membership_store.mark_published(conn, entries)

    def claim_job(self, owner: str) -> JobRow | None:
        now = self.engine.clock()
        with self.db.begin() as conn:
            return membership_store.claim_job(conn, owner, now, now + self.engine.timer_lease)

    def finish_job(self, job: JobRow, error: str) -> None:
        with self.db.begin() as conn:
            membership_store.finish_job(conn, job, error=error, now=self.engine.clock())

    def profile_segments(self, ws: str, profile_id: str) -> list[str]:
        with self.reader.connect() as conn:
            return membership_store.profile_segments(conn, ws, profile_id)
