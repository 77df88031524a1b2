"""Typing shorthands for servicers."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
"""The context argument of every async servicer method."""
