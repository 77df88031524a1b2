"""The batch renderer's bookkeeping, without a server."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright_render.batch import Rendering
from mailwright_render.render import RenderedEmail
from mailwright_render.wire_render import ResponseWriter, _result_header
from mailwright_render.wire_render import batch_response as _response

_text = st.text(max_size=300)
_pairs = st.lists(
    st.tuples(st.text(min_size=1, max_size=20), _text), max_size=4, unique_by=lambda p: p[0]
)


@st.composite
def _renderings(draw: st.DrawFn) -> Rendering:
    send_id = draw(st.text(min_size=1, max_size=40))
    if draw(st.booleans()):
        return Rendering(
            send_id, error=draw(_text), code=draw(st.sampled_from(["render", "sandbox"]))
        )
    email = RenderedEmail(
        profile_id="p",
        send_id=send_id,
        subject=draw(_text),
        preheader=draw(_text),
        html=draw(_text),
        text=draw(_text),
        headers=tuple(draw(_pairs)),
        subject_variant=draw(st.text(min_size=1, max_size=10)),
        preheader_variant=draw(st.none() | st.text(min_size=1, max_size=10)),
        block_variants=tuple(draw(_pairs)),
    )
    return Rendering(send_id, email, draw(st.none() | st.binary(max_size=200)))


@settings(max_examples=200)
@given(st.lists(_renderings(), min_size=1, max_size=5))
def test_the_response_writer_counts_each_result_exactly(renderings: list[Rendering]) -> None:
    writer = ResponseWriter()
    counted = sum(writer.add(rendering) for rendering in renderings)
    assert counted == writer.size == len(writer.encoded().data)
    assert writer.response == _response(renderings)


@settings(max_examples=100)
@given(st.lists(_renderings(), min_size=1, max_size=5))
def test_the_encoded_response_is_what_protobuf_writes(renderings: list[Rendering]) -> None:
    writer = ResponseWriter()
    for rendering in renderings:
        writer.add(rendering)
    assert writer.encoded().data == _response(renderings).SerializeToString()


@given(st.integers(min_value=0, max_value=2**28))
def test_a_result_is_framed_by_its_tag_and_varint_length(size: int) -> None:
    varint = bytearray()
    rest = size
    while True:
        varint.append(rest & 0x7F | (0x80 if rest >= 0x80 else 0))
        rest >>= 7
        if not rest:
            break
    assert _result_header(size) == b"\x0a" + bytes(varint)
