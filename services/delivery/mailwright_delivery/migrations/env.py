from mailwright.runtime.db import run_migrations
from mailwright_delivery.store import metadata

run_migrations(metadata)
