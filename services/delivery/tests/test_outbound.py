"""What delivery sends render for each recipient: traits and context as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from mailwright_delivery.outbound import wire_json


def test_whole_numbers_travel_as_integers_as_a_struct_would_render_them() -> None:
    sent = json.loads(wire_json({"orders": 3.0, "ratio": 0.5, "nested": {"n": [2.0, 2.5]}}))
    assert sent == {"orders": 3, "ratio": 0.5, "nested": {"n": [2, 2.5]}}
    assert type(sent["orders"]) is int


def test_values_json_has_no_type_for_travel_as_their_text() -> None:
    when = datetime(2026, 3, 1, 5, 30, tzinfo=UTC)
    sent = json.loads(wire_json({"since": when, "total": Decimal("12.50"), "tags": ("a", "b")}))
    assert sent == {"since": str(when), "total": "12.50", "tags": ["a", "b"]}


def test_huge_floats_stay_floats_and_flags_stay_booleans() -> None:
    sent = json.loads(wire_json({"big": 1e300, "vip": True, "none": None}))
    assert sent == {"big": 1e300, "vip": True, "none": None}
    assert type(sent["vip"]) is bool
