"""Everything held about a person, as one JSON document (`ExportProfile`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from google.protobuf import json_format

from mailwright.common.v1 import event_pb2
from mailwright_profile.convert import profile_name
from mailwright_profile.normalizers import parse_timestamp, timestamp_text
from mailwright_profile.store.privacy import ExportData

__all__ = ["CONTENT_TYPE", "export_document"]

CONTENT_TYPE = "application/json"


def _time(value: datetime | None) -> str | None:
    return None if value is None else timestamp_text(value)


def _meta_time(text: str) -> str | None:
    moment = parse_timestamp(text)
    return None if moment is None else timestamp_text(moment)


def export_document(data: ExportData, now: datetime) -> bytes:
    view = data.view
    ws = view.workspace
    document: dict[str, Any] = {
        "exported_at": timestamp_text(now),
        "profile": {
            "name": profile_name(ws, view.profile_id),
            "profile_id": view.profile_id,
            "version": view.version,
            "create_time": _time(view.created_at),
            "update_time": _time(view.updated_at),
            "first_seen_time": _time(view.first_seen),
            "last_seen_time": _time(view.last_seen),
            "merged_profiles": [profile_name(ws, p) for p in view.merged_profiles],
        },
        "identities": [
            {
                "type": link.identity.type,
                "value": link.identity.value,
                "source": link.source,
                "link_time": _time(link.linked_at),
                "message_id": link.message_id,
            }
            for link in view.identities
        ],
        "traits": {
            key: {
                "value": view.traits.get(key),
                "source": meta[1],
                "event_time": _meta_time(meta[0]),
            }
            for key, meta in sorted(view.trait_meta.items())
        },
        "computed_traits": view.computed_traits(now),
        "consents": {
            channel: {**entry, "time": _meta_time(str(entry.get("time", "")))}
            for channel, entry in sorted(view.consents.items())
        },
        "merges": [
            {
                "merge": f"workspaces/{ws}/merges/{m.merge_id}",
                "kept_profile": profile_name(ws, m.kept_id),
                "absorbed_profile": profile_name(ws, m.absorbed_id),
                "reason": m.reason.name.lower(),
                "shared_identities": [{"type": i.type, "value": i.value} for i in m.shared],
                "evidence": list(m.evidence),
                "score": m.score,
                "message_id": m.message_id,
                "actor": m.actor,
                "create_time": _time(m.created_at),
                "unmerge_time": _time(m.unmerged_at),
            }
            for m in data.merges
        ],
        "refused_merges": [
            {
                "profile": profile_name(ws, x.profile_id),
                "other_profile": profile_name(ws, x.other_id) if x.other_id else None,
                "identity_type": x.identity_type,
                "reason": x.reason,
                "message_id": x.message_id,
                "create_time": _time(x.created_at),
            }
            for x in data.refusals
        ],
        "merge_candidates": [
            {
                "left_profile": profile_name(ws, c.left_id),
                "right_profile": profile_name(ws, c.right_id),
                "score": c.score,
                "evidence": list(c.evidence),
                "create_time": _time(c.created_at),
            }
            for c in data.candidates
        ],
        "trait_conflicts": [{**c, "last_at": _time(c["last_at"])} for c in data.conflicts],
        "events": [
            json_format.MessageToDict(
                event_pb2.Event.FromString(payload), preserving_proto_field_name=True
            )
            for payload in data.events
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=1, default=str).encode()
