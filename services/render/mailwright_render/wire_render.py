"""Protobuf of the rendering RPCs to domain objects and back: recipients, options, results.

The other half of `wire` (templates, versions, issues): what `RenderBatch` and
`PreviewRender` read and write. Decoding a batch's recipients and encoding its results
run on the worker thread beside the rendering, so they are written for speed: a
recipient's `traits_json` / `context_json` are parsed by orjson in C (the batch
encoding: a Struct costs a Python call per value, which is most of a batch's decoding
time), Structs become plain Python in one pass, and results are built in place, never
copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson
from google.protobuf.message import Message

from mailwright.errors import Violations
from mailwright.render.v1 import render_pb2
from mailwright.structs import struct_to_dict
from mailwright_render.batch import Rendering, SendOptions
from mailwright_render.context import Delivery, Recipient
from mailwright_render.render import RenderedEmail

_NONE: frozenset[str] = frozenset()
_NO_LINKS: Mapping[str, str] = MappingProxyType({})
_LINE_FIELDS = ("from_address", "from_name", "reply_to", "unsubscribe_mailto", "campaign")

# JSON of a recipient ---------------------------------------------------------------------


def json_object(data: bytes, field: str, violations: Violations) -> dict[str, Any] | None:
    """A recipient's `traits_json` or `context_json` as plain Python (None, and a
    violation naming `field`, when it is not one JSON object)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        violations.add(field, f"is not valid JSON: {error}")
        return None
    if type(value) is not dict:
        violations.add(field, f"must be a JSON object, not {type(value).__name__}")
        return None
    return value


def _variables(
    message: render_pb2.Recipient, name: str, data: bytes, field: str, violations: Violations
) -> dict[str, Any] | None:
    """A recipient's `traits` or `context`: `data`, its JSON field, when set, else its
    Struct. (Field names for errors are only built for errors: this runs twice for
    every recipient of a batch.)"""
    if not data:
        return struct_to_dict(getattr(message, name))
    if message.HasField(name):  # type: ignore[arg-type]
        violations.add(f"{field}.{name}_json", f"set {name} or {name}_json, not both")
        return None
    try:
        value = _loads(data)
    except orjson.JSONDecodeError:
        return json_object(data, f"{field}.{name}_json", violations)
    if type(value) is not dict:
        return json_object(data, f"{field}.{name}_json", violations)
    return value


_loads = orjson.loads


def segment_id(name: str) -> str:
    """`workspaces/w/segments/s` or `s` → `s` (blocks and recipients may use either)."""
    return name.rsplit("/", 1)[-1] if name.startswith("workspaces/") else name


# Recipients and rendered messages -------------------------------------------------------


def recipient_from_proto(
    message: render_pb2.Recipient,
    workspace: str,
    field: str,
    violations: Violations,
    *,
    campaign: str = "",
    defaults: tuple[str, str] | None = None,
) -> tuple[Recipient, Delivery] | None:
    """A request's recipient; `defaults` (profile id, send id) stand in for a preview's."""
    profile_id = message.profile_id or (defaults[0] if defaults else "")
    send_id = message.send_id or (defaults[1] if defaults else "")
    if not profile_id or not send_id or (len(send_id) > 50 and len(send_id.encode()) > 200):
        if not profile_id:
            violations.add(f"{field}.profile_id", "is required")
        if not send_id:
            violations.add(f"{field}.send_id", "is required")
        elif len(send_id.encode()) > 200:
            violations.add(f"{field}.send_id", "longer than 200 bytes")
        return None
    traits = _variables(message, "traits", message.traits_json, field, violations)
    context = _variables(message, "context", message.context_json, field, violations)
    if traits is None or context is None:
        return None
    links = context.pop("links", None)
    send_campaign = context.pop("campaign", None)
    if links is not None and not isinstance(links, dict):
        violations.add(f"{field}.context.links", "must be an object of URLs")
        return None
    if send_campaign is not None and not isinstance(send_campaign, dict):
        violations.add(f"{field}.context.campaign", "must be an object")
        return None
    segments = message.segments
    recipient = Recipient.decoded(
        profile_id=profile_id,
        email=message.email,
        traits=traits,
        segments=frozenset(map(segment_id, segments)) if segments else _NONE,
        locale=message.locale or None,
        timezone=message.timezone or None,
        content=context,
    )
    delivery = Delivery.decoded(
        workspace=workspace,
        send_id=send_id,
        campaign={"name": campaign, **(send_campaign or {})} if campaign else send_campaign or {},
        links={str(k): str(v) for k, v in links.items()} if links else _NO_LINKS,
        subject_variant=message.subject_variant or None,
        preheader_variant=message.preheader_variant or None,
    )
    return recipient, delivery


def fill_message(
    message: render_pb2.RenderedMessage, rendered: RenderedEmail, mime: bytes | None
) -> None:
    """Write a rendered email into `message` in place (no copy of the large strings)."""
    message.subject = rendered.subject
    message.preheader = rendered.preheader
    message.html = rendered.html
    message.text = rendered.text
    message.subject_variant = rendered.subject_variant
    if rendered.preheader_variant:
        message.preheader_variant = rendered.preheader_variant
    if rendered.headers:
        headers = message.headers
        for name, value in rendered.headers:
            headers[name] = value
    if rendered.block_variants:
        blocks = message.block_variants
        for name, key in rendered.block_variants:
            blocks[name] = key
    if mime:
        message.mime = mime


def message_to_proto(rendered: RenderedEmail, mime: bytes | None) -> render_pb2.RenderedMessage:
    message = render_pb2.RenderedMessage()
    fill_message(message, rendered, mime)
    return message


def send_options(options: render_pb2.RenderOptions) -> SendOptions:
    violations = Violations()
    if options.mime and not options.from_address:
        violations.add("options.from_address", "is required to build MIME messages")
    for field in _LINE_FIELDS:
        value = getattr(options, field)
        if len(value) > 320 or "\n" in value or "\r" in value:
            violations.add(f"options.{field}", "at most 320 characters on one line")
    violations.raise_if_any()
    return SendOptions(
        from_address=options.from_address,
        from_name=options.from_name,
        reply_to=options.reply_to,
        track=options.track,
        mime=options.mime,
        unsubscribe_mailto=options.unsubscribe_mailto,
    )


def batch_items(
    request: render_pb2.RenderBatchRequest, workspace: str, options: SendOptions
) -> list[tuple[Recipient, Delivery]]:
    violations = Violations()
    items: list[tuple[Recipient, Delivery]] = []
    campaign = request.options.campaign
    for index, message in enumerate(request.recipients):
        field = f"recipients[{index}]"
        item = recipient_from_proto(message, workspace, field, violations, campaign=campaign)
        if options.mime and not message.email:
            violations.add(f"{field}.email", "is required to build MIME")
        if item is not None:
            items.append(item)
    violations.raise_if_any()
    return items


class EncodedResponse:
    """A response already in protobuf wire format. gRPC sends `data` as it is: the
    render service registers `RenderBatch` with `serialize_response` (see `app.py`),
    which asks the answer for its bytes, and these have them."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializeToString(self) -> bytes:
        return self.data


def serialize_response(response: Message | EncodedResponse) -> bytes:
    """The serializer of `RenderBatch`: a protobuf response, or one already encoded."""
    data: bytes = response.SerializeToString()
    return data


# `RenderBatchResponse.results` is field 1, length-delimited.
_RESULT_TAG = b"\x0a"


def _result_header(size: int) -> bytes:
    """The tag and varint length that frame one encoded result in the response."""
    if 0x80 <= size < 0x4000:  # most messages: a two-byte length
        return bytes((0x0A, size & 0x7F | 0x80, size >> 7))
    out = bytearray(_RESULT_TAG)
    while size >= 0x80:
        out.append(size & 0x7F | 0x80)
        size >>= 7
    out.append(size)
    return bytes(out)


class ResponseWriter:
    """A batch's answer, written one result at a time as the batch renders
    (`BatchRenderer.render_batch(..., write=writer.add)`).

    Each result is encoded on its own, in a small message that is freed at once, and
    framed as an element of `RenderBatchResponse.results`: the answer is the results'
    bytes joined (`encoded`), the same bytes protobuf would write for the whole
    response, without building the whole response as one message of ~6 MB and then
    serialising it. Each result's size in the answer is known exactly as it is added.
    """

    __slots__ = ("_parts", "size")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def add(self, rendering: Rendering) -> int:
        """Encode `rendering` into the answer; return the bytes it takes there."""
        result = render_pb2.RenderResult(send_id=rendering.send_id)
        if rendering.email is None:
            result.error = rendering.error
            result.error_code = rendering.code
        else:
            fill_message(result.message, rendering.email, rendering.mime)
        data = result.SerializeToString()
        header = _result_header(len(data))
        self._parts += (header, data)
        size = len(header) + len(data)
        self.size += size
        return size

    def encoded(self) -> EncodedResponse:
        """The answer in wire format, for gRPC to send as it is."""
        return EncodedResponse(b"".join(self._parts))

    @property
    def response(self) -> render_pb2.RenderBatchResponse:
        """The answer as a message (parsed from its bytes: for tests and tools)."""
        return render_pb2.RenderBatchResponse.FromString(self.encoded().data)


def batch_response(renderings: list[Rendering]) -> render_pb2.RenderBatchResponse:
    """The answer to a batch already rendered, as a message built field by field."""
    response = render_pb2.RenderBatchResponse()
    for rendering in renderings:
        result = response.results.add(send_id=rendering.send_id)
        if rendering.email is None:
            result.error = rendering.error
            result.error_code = rendering.code
        else:
            fill_message(result.message, rendering.email, rendering.mime)
    return response
