"""profile match keys: the keys of two blocking rules added after profiles were stored

Identity resolution gained four blocking rules: "birth date + last initial", "birth date
+ city", "birth date + postal prefix" and "address + city" (docs/identity.md, "Blocking"). Stored profiles keep their blocking keys in
`profile_match_keys`, written when a profile's contact traits change; without this
migration the profiles stored before would get keys of the new rules only at their next
change, and imports (`ResolveRecords`) would not find them by those rules. Every profile
that has match keys gets the new rules' keys from its stored traits, a thousand profiles
at a time.

Revision ID: f1c4d8e2a7b3
Revises: e5b1c7d3a9f2
Create Date: 2026-11-29 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mailwright_profile.matching.blocking import DEFAULT_BLOCKING_RULES
from mailwright_profile.matching.incremental import blocking_keys
from mailwright_profile.store import tables as t
from mailwright_profile.store.matchkeys import profile_record

revision: str = "f1c4d8e2a7b3"
down_revision: str | None = "e5b1c7d3a9f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_RULES = (
    "birth date + last initial",
    "birth date + city",
    "birth date + postal prefix",
    "address + city",
)
PAGE = 1000


def _new_rules() -> list[int]:
    """The new rules' places in the rule list (the `rule` column of a match key)."""
    return [i for i, rule in enumerate(DEFAULT_BLOCKING_RULES) if rule.name in NEW_RULES]


def upgrade() -> None:
    conn = op.get_bind()
    places = _new_rules()
    rules = [DEFAULT_BLOCKING_RULES[i] for i in places]
    keys, profiles = t.match_keys.c, t.profiles.c
    after = ("", "")
    while True:
        page = conn.execute(
            sa.select(keys.workspace, keys.profile_id)
            .where(sa.tuple_(keys.workspace, keys.profile_id) > after)
            .group_by(keys.workspace, keys.profile_id)
            .order_by(keys.workspace, keys.profile_id)
            .limit(PAGE)
        ).all()
        if not page:
            return
        after = (page[-1].workspace, page[-1].profile_id)
        wanted = [(row.workspace, row.profile_id) for row in page]
        stored = conn.execute(
            sa.select(profiles.workspace, profiles.profile_id, profiles.traits).where(
                sa.tuple_(profiles.workspace, profiles.profile_id).in_(wanted)
            )
        ).all()
        records = [profile_record(row.profile_id, row.traits or {}, None) for row in stored]
        rows = [
            {
                "workspace": row.workspace,
                "rule": places[rule],
                "key": key,
                "profile_id": row.profile_id,
            }
            for row, found in zip(stored, blocking_keys(records, rules), strict=True)
            for rule, key in dict.fromkeys(found)
        ]
        # (none should be there yet; were a profile rewritten by the new code already,
        # its keys are replaced rather than doubled)
        conn.execute(
            t.match_keys.delete().where(
                keys.rule.in_(places), sa.tuple_(keys.workspace, keys.profile_id).in_(wanted)
            )
        )
        if rows:
            conn.execute(t.match_keys.insert(), rows)


def downgrade() -> None:
    op.execute(t.match_keys.delete().where(t.match_keys.c.rule.in_(_new_rules())))
