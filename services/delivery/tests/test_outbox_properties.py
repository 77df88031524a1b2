"""A property of the outbox, checked over random interleavings of workers that claim,
confirm, send, retry, crash and time out: a send is recorded sent at most once, with one
`Email Sent` event, and once sent it is never claimed again."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import mailwright_delivery
from mailwright.runtime.db import Database
from mailwright_delivery.model import Category, SendState
from mailwright_delivery.records import NewSend, OutboxMessage
from mailwright_delivery.store import Accepted, DeliveryStore

MIGRATIONS = Path(mailwright_delivery.__file__).resolve().parent / "migrations"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
SENDS = 6
WORKERS = ("w1", "w2", "w3")


class Outbox(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.TemporaryDirectory()
        self.db = Database(
            f"sqlite:///{Path(self.directory.name) / 'd.db'}",
            service="delivery",
            migrations=MIGRATIONS,
        )
        self.db.migrate()
        self.store = DeliveryStore(self.db.engine)
        self.now = START
        self.held: dict[str, set[str]] = {w: set() for w in WORKERS}
        self.handed: dict[str, set[str]] = {w: set() for w in WORKERS}
        self.accepted: set[str] = set()
        for n in range(SENDS):
            self.store.insert_send(
                NewSend(f"s{n}", "acme", f"k{n}", Category.MARKETING, 10, START, f"p{n}"), START
            )

    def teardown(self) -> None:
        self.db.close()
        self.directory.cleanup()

    @rule(worker=st.sampled_from(WORKERS), limit=st.integers(1, 4))
    def claim(self, worker: str, limit: int) -> None:
        claimed = self.store.claim_sends(self.now, worker, self.now + LEASE, limit)
        for send in claimed:
            assert send.id not in self.accepted, "a sent send was claimed again"
        # A worker whose lease lapsed does not know it: it keeps what it holds, and may
        # still hand it over (the case the records must survive).
        self.held[worker] |= {s.id for s in claimed}

    @rule(worker=st.sampled_from(WORKERS))
    def confirm(self, worker: str) -> None:
        kept = self.store.confirm_sends(
            sorted(self.held[worker]), worker, self.now, self.now + LEASE
        )
        self.handed[worker] |= kept
        self.held[worker] -= set(self.held[worker]) - kept

    @rule(worker=st.sampled_from(WORKERS), data=st.data())
    def provider_accepts(self, worker: str, data: st.DataObject) -> None:
        if not self.handed[worker]:
            return
        send_id = data.draw(st.sampled_from(sorted(self.handed[worker])))
        event = OutboxMessage("events.email", "k", f"{send_id}:sent".encode())
        recorded = self.store.mark_sent_many(
            [Accepted(send_id, "smtp", f"<{send_id}@x>", "h", (event,))], self.now
        )
        if recorded:
            self.accepted.add(send_id)
        self.handed[worker].discard(send_id)
        self.held[worker].discard(send_id)

    @rule(worker=st.sampled_from(WORKERS), data=st.data())
    def provider_defers(self, worker: str, data: st.DataObject) -> None:
        if not self.handed[worker]:
            return
        send_id = data.draw(st.sampled_from(sorted(self.handed[worker])))
        self.store.mark_retry(send_id, worker, self.now, "transient", self.now)
        self.handed[worker].discard(send_id)
        self.held[worker].discard(send_id)

    @rule(worker=st.sampled_from(WORKERS))
    def crash(self, worker: str) -> None:
        self.held[worker].clear()
        self.handed[worker].clear()

    @rule(seconds=st.sampled_from([1, 10, 31]))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @invariant()
    def sent_once_with_one_event(self) -> None:
        with self.db.engine.connect() as conn:
            payloads = [
                bytes(row[0]) for row in conn.exec_driver_sql("SELECT payload FROM delivery_outbox")
            ]
        assert len(payloads) == len(set(payloads)) == len(self.accepted)
        for send_id in self.accepted:
            record = self.store.get_send("acme", send_id)
            assert record is not None
            assert record.state is SendState.SENT


Outbox.TestCase.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)
test_the_outbox_sends_each_message_once = Outbox.TestCase
