"""Migration f1c4d8e2a7b3: profiles stored before the four blocking rules added with it
get those rules' keys, so that imports find them by those rules."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from mailwright.runtime.db import alembic_config
from mailwright_profile.app import MIGRATIONS
from mailwright_profile.events import read_event
from mailwright_profile.matching.blocking import DEFAULT_BLOCKING_RULES
from mailwright_profile.simulate import identify
from mailwright_profile.store import ProfileStore
from mailwright_profile.store import tables as t

BEFORE = "e5b1c7d3a9f2"
NEW_RULES = {
    i: rule.name
    for i, rule in enumerate(DEFAULT_BLOCKING_RULES)
    if rule.name
    in ("birth date + last initial", "birth date + city", "birth date + postal prefix",
        "address + city")
}  # fmt: skip


def _keys(store: ProfileStore) -> set[tuple[str, str, str]]:
    """(profile, rule name, key) of the new rules' stored keys."""
    keys = t.match_keys.c
    with store.db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(keys.profile_id, keys.rule, keys.key).where(keys.rule.in_(NEW_RULES))
        )
        return {(row.profile_id, NEW_RULES[row.rule], row.key) for row in rows}


def _migrate(store: ProfileStore, revision: str, down: bool = False) -> None:
    with store.db.engine.begin() as conn:
        config = alembic_config(MIGRATIONS, "profile", conn)
        (command.downgrade if down else command.upgrade)(config, revision)


def test_profiles_stored_before_the_new_rules_get_their_keys(store: ProfileStore) -> None:
    traits = {
        "first_name": "Ruby",
        "last_name": "Reid",
        "birth_date": "1930-06-20",
        "address_line1": "12 Judkins Street",
        "city": "Airds",
    }
    events = [
        identify(user_id="u1", message_id="m1", traits=traits),
        identify(user_id="u2", message_id="m2", traits={"first_name": "Nobody"}),
    ]
    result = store.apply_batch([read_event(e) for e in events], datetime.now(UTC))
    ruby = result.profiles["m1"]
    written = _keys(store)  # as the batch apply writes them today
    assert written == {
        (ruby, "birth date + last initial", "1930-06-20|r"),
        (ruby, "birth date + city", "1930-06-20|airds"),
        (ruby, "address + city", "12 judkins st|airds"),
    }  # (no postal code: no "birth date + postal prefix" key)

    _migrate(store, BEFORE, down=True)  # the keys as a store of before had them
    assert _keys(store) == set()
    _migrate(store, "head")
    assert _keys(store) == written
