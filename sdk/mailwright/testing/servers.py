"""Where the backing servers of the test suite live, and whether they must be there.

On CI `MAILWRIGHT_TEST_REQUIRE_SERVICES=1` is set, and a test that needs PostgreSQL or
Redis fails instead of skipping when the server does not answer.
"""

from __future__ import annotations

import os

POSTGRES_ADMIN_URL = os.environ.get(
    "MAILWRIGHT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MAILWRIGHT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def services_required() -> bool:
    """True when a missing PostgreSQL or Redis must fail the test run."""
    return os.environ.get("MAILWRIGHT_TEST_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}
