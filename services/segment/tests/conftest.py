"""Fixtures of the segment service's tests."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailwright.runtime.db import create_engine
from mailwright_segment.store import sqlfuncs
from mailwright_segment.store.tables import metadata


def _load_helper(name: str) -> None:
    """Make a helper module of this directory importable (tests run in importlib mode)."""
    if name in sys.modules:
        return
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_load_helper("agreement")


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine on a fresh database (SQLite and PostgreSQL) with the segment tables."""
    created = create_engine(database_url)
    sqlfuncs.prepare(created)
    metadata.create_all(created)
    yield created
    created.dispose()
