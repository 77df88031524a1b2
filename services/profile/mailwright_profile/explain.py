"""A readable account of why identities are (or are not) one profile."""

from __future__ import annotations

from collections.abc import Sequence

from mailwright_profile.identity import Identity
from mailwright_profile.views import Explanation, MergeReason, MergeView, RefusalView

__all__ = ["summary"]

_REASONS = {
    MergeReason.IDENTIFY: "an identify event carried identities of both",
    MergeReason.ALIAS: "an alias event linked an identity of each",
    MergeReason.SHARED_IDENTITY: "an event carried identities of both",
    MergeReason.PROBABILISTIC: "a probabilistic match",
    MergeReason.MANUAL: "a person merged them",
}


def _identity(identity: Identity) -> str:
    return f"{identity.type} {identity.value}"


def _day(merge: MergeView) -> str:
    return merge.created_at.strftime("%Y-%m-%d %H:%M UTC")


def _merge(merge: MergeView) -> str:
    text = f"{merge.absorbed_id} was merged into {merge.kept_id} on {_day(merge)}: "
    text += _REASONS[merge.reason]
    if merge.message_id:
        text += f" (event {merge.message_id})"
    if merge.shared:
        text += ", shared " + ", ".join(_identity(i) for i in merge.shared)
    if merge.reason == MergeReason.PROBABILISTIC:
        strongest = sorted(merge.evidence, key=lambda e: -float(e.get("weight", 0.0)))[:3]
        parts = [
            f"{e.get('field')} {e.get('level')} ({float(e.get('weight', 0.0)):+.1f})"
            for e in strongest
        ]
        text += f", probability {merge.score:.3f}"
        if parts:
            text += " — " + ", ".join(parts)
    elif merge.reason == MergeReason.MANUAL and merge.actor:
        text += f" ({merge.actor})"
    return text


def _refusals(refusals: Sequence[RefusalView]) -> str:
    if not refusals:
        return ""
    items = "; ".join(
        f"{x.profile_id} and {x.other_id or 'a new profile'}: {x.reason}" for x in refusals[:5]
    )
    more = f" and {len(refusals) - 5} more" if len(refusals) > 5 else ""
    return f" Refused merges: {items}{more}."


def summary(
    explanation: Explanation,
    left: Identity | None = None,
    right: Identity | None = None,
    right_profile: str | None = None,
) -> str:
    """The explanation in words (see ExplainIdentity)."""
    profile = explanation.profile_id
    if left is None or right is None:
        links = ", ".join(_identity(link.identity) for link in explanation.links) or "none"
        text = f"Profile {profile} holds {len(explanation.links)} identities: {links}."
        if explanation.merges:
            text += f" It was built by {len(explanation.merges)} merges. " + " ".join(
                _merge(m) + "." for m in explanation.merges
            )
        else:
            text += " No merge built it."
        return text + _refusals(explanation.refusals)
    if not explanation.same_profile:
        where = f"{_identity(left)} belongs to profile {profile}"
        other = (
            f"{_identity(right)} to profile {right_profile}"
            if right_profile
            else f"{_identity(right)} to no profile"
        )
        return f"Not one profile: {where}, {other}." + _refusals(explanation.refusals)
    homes = explanation.homes
    text = f"{_identity(left)} and {_identity(right)} are one profile ({profile})."
    for identity in (left, right):
        link = next((x for x in explanation.links if x.identity == identity), None)
        if link is not None:
            text += (
                f" {_identity(identity)} was linked to profile "
                f"{homes.get(f'{identity.type}:{identity.value}', profile)} by event "
                f"{link.message_id} from {link.source} on {link.linked_at:%Y-%m-%d}."
            )
    if explanation.merges:
        text += " " + " ".join(_merge(m) + "." for m in explanation.merges)
    else:
        text += " Both were linked to the same profile directly."
    return text
