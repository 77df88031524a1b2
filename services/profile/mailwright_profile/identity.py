"""Deterministic identity: what an identity is, the merge policy, and how an event's
identities decide which profile it belongs to.

An identity is a `(type, value)` pair: `user_id`, `email`, `phone`, `anonymous_id`,
`device_id`, or a connector id such as `shopify:customer`. Values are normalised (emails
folded the way their provider reads them, phones in E.164), so one mailbox or number is
one identity however it was written.

`plan_links` is the rule book for one event: given who owns each of its identities, it
decides the target profile, the merges the event causes, the merges the policy refuses
and the identities it links. It is pure: the store answers its questions through
`IdentityView`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from mailwright_profile.normalizers import normalize_email, normalize_phone

__all__ = [
    "BUILTIN_TYPES",
    "DEFAULT_POLICY",
    "Identity",
    "IdentityError",
    "IdentityView",
    "LinkPlan",
    "MergePolicy",
    "PlannedMerge",
    "Refusal",
    "check_identity_type",
    "normalize_identity",
    "plan_links",
    "strength",
    "strongest",
]

BUILTIN_TYPES = ("user_id", "email", "phone", "device_id", "anonymous_id")
CONNECTOR_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,30}:[a-z][a-z0-9_]{0,30}$")
MAX_VALUE_CHARS = 320
# The order in which an event's identities say who it is: the first owned one routes it.
_STRENGTH = {"user_id": 0, "email": 1, "phone": 2, "device_id": 4, "anonymous_id": 5}
_CONNECTOR_STRENGTH = 3


class IdentityError(ValueError):
    """An identity that cannot be used; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Identity(NamedTuple):
    """A (type, value) pair. A named tuple rather than a dataclass: every event hashes
    and compares several (lookups, links, the batch's owners), and a tuple does that in
    C."""

    type: str
    value: str


def check_identity_type(kind: str) -> str:
    """`kind` if it is a known type or a connector id type (`shopify:customer`)."""
    if kind in _STRENGTH or CONNECTOR_TYPE.match(kind):
        return kind
    raise IdentityError(
        "type",
        f"unknown identity type {kind!r}: use one of {', '.join(BUILTIN_TYPES)} "
        "or a connector id type such as shopify:customer",
    )


def normalize_identity(kind: str, value: str, region: str | None = None) -> Identity:
    """The identity in its canonical form; IdentityError when it cannot be one."""
    check_identity_type(kind)
    text = value.strip()
    if not text:
        raise IdentityError("value", "is empty")
    if len(text) > MAX_VALUE_CHARS:
        raise IdentityError("value", f"is longer than {MAX_VALUE_CHARS} characters")
    if kind == "email":
        email = normalize_email(text)
        if email is None:
            raise IdentityError("value", "is not an email address")
        return Identity(kind, email)
    if kind == "phone":
        phone = normalize_phone(text, region)
        if phone is None:
            raise IdentityError(
                "value", "is not a phone number (E.164, or national with a country)"
            )
        return Identity(kind, phone)
    return Identity(kind, text)


def strength(identity: Identity) -> tuple[int, str, str]:
    """Sort key: user id first, then email, phone, connector ids, device, anonymous id."""
    rank = _STRENGTH.get(identity.type, _CONNECTOR_STRENGTH)
    return (rank, identity.type, identity.value)


@functools.lru_cache(maxsize=65_536)
def strongest(identities: tuple[Identity, ...]) -> Identity:
    """The strongest of some identities (the first in `strength` order), remembered: a
    person's events carry the same identities again and again."""
    return min(identities, key=strength)


@dataclass(frozen=True)
class MergePolicy:
    """A workspace's rules for joining profiles (see docs/profiles.md)."""

    unique_identity_types: tuple[str, ...] = ("user_id",)
    source_priority: tuple[str, ...] = ()
    auto_merge_threshold: float = 0.9
    review_threshold: float = 0.5

    def rank(self, source: str) -> int:
        """Higher for sources earlier in `source_priority`; 0 for sources not listed."""
        try:
            return len(self.source_priority) - self.source_priority.index(source)
        except ValueError:
            return 0

    def conflicts(
        self, first: Mapping[str, Iterable[str]], second: Mapping[str, Iterable[str]]
    ) -> list[str]:
        """The unique identity types of which the two sides together hold two values."""
        found = []
        for kind in self.unique_identity_types:
            values = set(first.get(kind, ())) | set(second.get(kind, ()))
            if len(values) > 1:
                found.append(kind)
        return found


DEFAULT_POLICY = MergePolicy()


@dataclass(frozen=True)
class PlannedMerge:
    """`absorbed` joins `kept` because the event carried `shared` identities of both."""

    kept: str
    absorbed: str
    shared: tuple[Identity, ...]


@dataclass(frozen=True)
class Refusal:
    """A merge (or a link) the policy refused; kept for the record."""

    profile: str
    other: str
    identity_type: str
    reason: str


@dataclass
class LinkPlan:
    """What one event does to identities and profiles.

    `target` is the profile the event belongs to (None: a new profile, created for it);
    `home` is the profile of the identity that routed it (None: the target itself), so
    that an unmerge can give the event back to the side it came from.
    """

    target: str | None = None
    home: str | None = None
    merges: list[PlannedMerge] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    links: list[Identity] = field(default_factory=list)


class IdentityView(Protocol):
    """What `plan_links` asks of the store while it plans one event."""

    def owner(self, identity: Identity) -> tuple[str, str] | None:
        """(profile, home profile) that holds the identity, or None."""

    def unique_values(self, profile: str) -> Mapping[str, Iterable[str]]:
        """Values of the policy's unique identity types held by the profile."""

    def separated(self, first: str, second: str) -> bool:
        """Whether a person unmerged these two profiles (they are never joined again)."""

    def older(self, first: str, second: str) -> tuple[str, str]:
        """(kept, absorbed): the profile created first is kept."""


def plan_links(identities: Sequence[Identity], view: IdentityView, policy: MergePolicy) -> LinkPlan:
    """Decide what an event carrying `identities` does (see the module docstring).

    Identities are taken strongest first. The first one held by a profile sets the
    target; each one held by another profile merges that profile in, unless the policy
    refuses (two values of a unique type, or a pair a person unmerged). Identities held
    by nobody link to the target, except one of a unique type whose value the target
    already holds differently: when it is the event's strongest identity (a second user
    signing in on a shared device), the event starts a new profile instead.
    """
    ordered = sorted(dict.fromkeys(identities), key=strength)
    plan = LinkPlan()
    fresh: list[Identity] = []
    # unique-type values of the target so far (its own, its merges'), read when needed
    held: dict[str, set[str]] | None = None

    def target_values() -> dict[str, set[str]]:
        nonlocal held
        if held is None:
            held = _values(view.unique_values(plan.target)) if plan.target else {}
        return held

    for identity in ordered:
        found = view.owner(identity)
        if found is None:
            fresh.append(identity)
            continue
        owner, home = found
        if plan.target is None:
            plan.target, plan.home = owner, home
            continue
        if owner == plan.target:
            continue
        other = _values(view.unique_values(owner))
        refusal = _refusal(plan.target, owner, target_values(), other, view, policy)
        if refusal is not None:
            plan.refusals.append(refusal)
            continue
        kept, absorbed = view.older(plan.target, owner)
        plan.merges.append(PlannedMerge(kept, absorbed, _shared(ordered, plan, view, owner)))
        plan.target = kept
        for kind, values in other.items():
            target_values().setdefault(kind, set()).update(values)
    needs_values = any(i.type in policy.unique_identity_types for i in fresh)
    _link_fresh(plan, fresh, target_values() if needs_values else {}, ordered, policy)
    if plan.target is None:
        plan.home = None
    return plan


def _values(raw: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    return {kind: set(values) for kind, values in raw.items()}


def _refusal(
    target: str,
    owner: str,
    held: Mapping[str, set[str]],
    other: Mapping[str, set[str]],
    view: IdentityView,
    policy: MergePolicy,
) -> Refusal | None:
    if view.separated(target, owner):
        return Refusal(target, owner, "", "the profiles were unmerged by a person")
    conflicts = policy.conflicts(held, other)
    if conflicts:
        kind = conflicts[0]
        return Refusal(target, owner, kind, f"both profiles hold a different {kind}")
    return None


def _shared(
    ordered: Sequence[Identity], plan: LinkPlan, view: IdentityView, owner: str
) -> tuple[Identity, ...]:
    """The event's identities held by the target or by the profile it merges in."""
    members = {owner, plan.target}
    shared = []
    for identity in ordered:
        found = view.owner(identity)
        if found is not None and found[0] in members:
            shared.append(identity)
    return tuple(shared)


def _link_fresh(
    plan: LinkPlan,
    fresh: list[Identity],
    held: dict[str, set[str]],
    ordered: Sequence[Identity],
    policy: MergePolicy,
) -> None:
    unique = set(policy.unique_identity_types)
    strongest = ordered[0] if ordered else None
    if plan.target is not None and strongest in fresh and strongest is not None:
        taken = held.get(strongest.type, set()) - {strongest.value}
        if strongest.type in unique and taken:
            # The event is someone else's: start a new profile for it.
            plan.refusals.append(
                Refusal(
                    plan.target,
                    "",
                    strongest.type,
                    f"the profile already holds a different {strongest.type}",
                )
            )
            plan.target, plan.merges, held = None, [], {}
    for identity in fresh:
        taken = held.get(identity.type, set()) - {identity.value}
        if identity.type in unique and taken:
            if plan.target is not None:
                plan.refusals.append(
                    Refusal(
                        plan.target,
                        "",
                        identity.type,
                        f"the profile already holds a different {identity.type}",
                    )
                )
            continue
        held.setdefault(identity.type, set()).add(identity.value)
        plan.links.append(identity)
