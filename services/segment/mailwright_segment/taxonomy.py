"""What rules are checked against: the default taxonomy plus what the projection observed.

The segment service does not own the event taxonomy (ingest does) nor the trait schema
(profile does), and it calls neither. It checks a rule against

* the taxonomy and traits shipped with the SDK's segment library (the e-commerce tracking
  plan: `Order Completed`, `Product Viewed`, `country`, `clv_12m` …) and the email and page
  events this service reads (`Email Sent`, `Email Opened`, `Email Clicked`, `Page Viewed`);
* every event property and trait the projection has seen, with the type of its values
  (a property seen with values of two types is left untyped).

Because a workspace's real taxonomy may hold events this service has not seen yet, an
unknown event, property or trait is a *warning* (saved with the segment, returned by
`ValidateRule`), never a silent false; a type mismatch against a known type is an error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from mailwright.rules.library import builtin_taxonomy
from mailwright.rules.schema import Taxonomy, TraitSchema, ValueType, value_type

SERVICE_EVENTS: dict[str, dict[str, str]] = {
    "Email Sent": {"send_id": "string", "campaign": "string", "journey": "string"},
    "Email Opened": {"send_id": "string", "machine": "boolean"},
    "Email Clicked": {"send_id": "string", "url": "url"},
    "Page Viewed": {"name": "string", "category": "string", "url": "url", "path": "string"},
}


def rule_schema(observed: Iterable[tuple[str, str, str]]) -> tuple[Taxonomy, TraitSchema]:
    """The taxonomy and trait schema of a workspace, from (event or "", key, type) seen."""
    base_events, base_traits = builtin_taxonomy()
    events: dict[str, dict[str, ValueType]] = {
        name: dict(props) for name, props in base_events.events.items()
    }
    for name, props in SERVICE_EVENTS.items():
        events.setdefault(name, {}).update({k: value_type(t) for k, t in props.items()})
    traits: dict[str, ValueType] = dict(base_traits.traits)
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event, key, kind in observed:
        seen[(event, key)].add(kind)
    for (event, key), kinds in seen.items():
        declared = events.setdefault(event, {}) if event else traits
        if key in declared or len(kinds) != 1:
            continue
        declared[key] = value_type(next(iter(kinds)))
    return (
        Taxonomy.from_mapping(events, allow_unplanned=True),
        TraitSchema.from_mapping(traits, allow_undeclared=True),
    )
