"""The profile service's storage: its tables and every query on them.

This package is the only part of the service that knows SQLAlchemy. `ProfileStore` is
its face: synchronous methods, each one transaction, called from async code through
`Database.run`. The parts:

- `tables` — the tables (and `metadata`, which Alembic reads);
- `apply` — applying a batch of events;
- `reads` — profiles, lookups, lists, history, schema, policy, merge candidates;
- `identities` — manual merges, unmerges and what explains an identity;
- `privacy` — erasure and export;
- `imports` — resolving records against stored profiles;
- `upkeep` — partitions, scheduled re-evaluation, the outbox, the audit.
"""

from mailwright_profile.store.apply import BatchResult, ChangeEncoder
from mailwright_profile.store.facade import ProfileStore
from mailwright_profile.store.outbox import CHANGED_TOPIC, DELETED_TOPIC, Outgoing
from mailwright_profile.store.tables import metadata

__all__ = [
    "CHANGED_TOPIC",
    "DELETED_TOPIC",
    "BatchResult",
    "ChangeEncoder",
    "Outgoing",
    "ProfileStore",
    "metadata",
]
