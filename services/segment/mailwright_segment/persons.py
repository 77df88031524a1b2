"""From the reference evaluator's `Person` to the projection's facts and state.

The agreement tests draw random people with `mailwright.testing.rules` and give the same
person to the three evaluators: the reference evaluator reads the `Person` (normalised as
the projection normalises), the batch and incremental evaluators read the projection that
the person's facts produce. The benchmarks build states the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailwright.rules.person import EmailSend, Event, Person
from mailwright_segment.facts import EmailFact, EventFact, ProfileChange
from mailwright_segment.specs import Spec
from mailwright_segment.state import PersonState, Send
from mailwright_segment.values import from_micros, normalize_mapping, to_micros


def normalized(person: Person) -> Person:
    """The person as the projection keeps them (values normalised, instants to the µs)."""
    return Person(
        normalize_mapping(person.traits),
        tuple(
            Event(e.name, from_micros(to_micros(e.timestamp)), normalize_mapping(e.properties))
            for e in person.events
        ),
        person.emails,
        person.segments,
    )


def event_facts(person: Person, prefix: str = "") -> list[EventFact]:
    return [
        EventFact(f"{prefix}e{i}", e.name, to_micros(e.timestamp), normalize_mapping(e.properties))
        for i, e in enumerate(person.events)
    ]


def email_facts(person: Person) -> list[EmailFact]:
    facts: list[EmailFact] = []
    for send in person.emails:
        sid = send.send_id
        facts.append(EmailFact(f"{sid}:sent", sid, "sent", to_micros(send.sent_at)))
        for kind, times in (
            ("open", send.opens),
            ("click", send.clicks),
            ("machine_open", send.machine_opens),
        ):
            facts.extend(
                EmailFact(f"{sid}:{kind}{i}", sid, kind, to_micros(t)) for i, t in enumerate(times)
            )
    return facts


def change_of(person: Person, ws: str, profile_id: str, version: int = 1) -> ProfileChange:
    """A change that brings a new profile to the person's data (memberships aside)."""
    return ProfileChange(
        workspace=ws,
        profile_id=profile_id,
        version=version,
        traits=normalize_mapping(person.traits),
        events=tuple(event_facts(person, f"{profile_id}-")),
        emails=tuple(email_facts(person)),
    )


def state_of(person: Person, specs: Iterable[Spec]) -> PersonState:
    """The in-memory projection of a person for the given specs (nothing pruned)."""
    state = PersonState(traits=normalize_mapping(person.traits), segments=set(person.segments))
    facts = sorted(event_facts(person), key=lambda f: f.at)
    for spec in specs:
        data = state.spec(spec.id)
        for fact in facts:
            if spec.matches(fact.name, fact.properties):
                number, group = spec.hit(fact.properties)
                data.hits.add(fact.at, number, group)
    state.sends = sorted((_send(s) for s in person.emails), key=lambda s: (s.sent_at, s.send_id))
    return state


def _send(send: EmailSend) -> Send:
    opens = sorted(to_micros(t) for t in send.opens)
    clicks = sorted(to_micros(t) for t in send.clicks)
    return Send(
        send.send_id,
        to_micros(send.sent_at),
        opens,
        clicks,
        opens[0] if opens else None,
        clicks[0] if clicks else None,
    )
