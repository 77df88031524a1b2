"""Template files as data: what `source_to_mapping` writes, `template_from_mapping` reads."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright_render import (
    BlockVariant,
    ContentBlock,
    MissingPolicy,
    RuleCondition,
    SegmentCondition,
    TemplateKind,
    TemplateSource,
    Variant,
    source_to_mapping,
    template_from_mapping,
)

_keys = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,8}", fullmatch=True)
_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True)
_text = st.text(max_size=40)


@st.composite
def _variants(draw: st.DrawFn, minimum: int) -> tuple[Variant, ...]:
    keys = draw(st.lists(_keys, min_size=minimum, max_size=3, unique=True))
    weights = st.floats(min_value=0, max_value=10, allow_nan=False)
    return tuple(Variant(key, draw(_text), draw(weights)) for key in keys)


_conditions = st.one_of(
    st.builds(RuleCondition, _text),
    st.builds(
        SegmentCondition,
        st.lists(_keys, min_size=1, max_size=3).map(tuple),
        st.sampled_from(["any", "all", "none"]),
    ),
)


@st.composite
def _blocks(draw: st.DrawFn) -> tuple[ContentBlock, ...]:
    blocks = []
    for name in draw(st.lists(_names, max_size=3, unique=True)):
        keys = draw(st.lists(_keys, max_size=3, unique=True))
        variants = tuple(BlockVariant(key, draw(_text), draw(_conditions)) for key in keys)
        blocks.append(ContentBlock(name, variants, draw(_text)))
    return tuple(blocks)


@st.composite
def _sources(draw: st.DrawFn) -> TemplateSource:
    body = draw(_text)
    mjml = draw(st.booleans())
    return TemplateSource(
        name=draw(_names),
        subject=draw(_variants(1)),
        preheader=draw(_variants(0)),
        html=None if mjml else body,
        mjml=body if mjml else None,
        text=draw(st.none() | _text),
        blocks=draw(_blocks()),
        kind=draw(st.sampled_from(TemplateKind)),
        missing=draw(st.sampled_from(MissingPolicy)),
    )


@settings(max_examples=50)
@given(_sources())
def test_a_source_survives_its_mapping_through_json(source: TemplateSource) -> None:
    stored = json.loads(json.dumps(source_to_mapping(source)))
    assert template_from_mapping(stored, Path(".")) == source
