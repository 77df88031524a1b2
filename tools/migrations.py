"""Create a service's next Alembic migration by comparing its tables with its migrations.

    python tools/migrations.py SERVICE "what changed"

It upgrades a scratch SQLite database to the newest migration, autogenerates the
difference against the service's `store.metadata`, and writes the file into
`services/SERVICE/mailwright_SERVICE/migrations/versions/`. Read and edit what it writes.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path

from alembic import command

from mailwright.runtime.db import Database, alembic_config

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    service, message = argv
    package = importlib.import_module(f"mailwright_{service}")
    migrations = Path(package.__file__).resolve().parent / "migrations"
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/scratch.db", service=service, migrations=migrations)
        db.migrate()
        with db.engine.begin() as conn:
            config = alembic_config(migrations, service, conn)
            command.revision(config, message=message, autogenerate=True)
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
