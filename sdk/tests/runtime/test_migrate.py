"""`mailwright migrate` brings each service's database to its newest schema and exits."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from click.testing import CliRunner, Result

from mailwright.cli import cli
from mailwright.runtime.db import Database, alembic_config
from mailwright.runtime.migrate import (
    SchemaStatus,
    inspect_service,
    migrate_service,
    select_services,
    wait_until_current,
)
from mailwright.runtime.service import ServiceDefinition, UnknownService, service_definitions
from mailwright.runtime.settings import Settings


def _profile_migrations() -> Path:
    migrations = service_definitions()["profile"].migrations
    assert migrations is not None
    return migrations


def _run(tmp_path: Path, database_url: str, *args: str) -> Result:
    env = {"MAILWRIGHT_DATABASE_URL": database_url, "MAILWRIGHT_CONFIG": ""}
    return CliRunner().invoke(cli, ["migrate", "--data-dir", str(tmp_path), *args], env=env)


def _revision(database_url: str, service: str = "profile") -> str | None:
    database = Database(database_url, service=service, migrations=_profile_migrations())
    try:
        return database.current_revision()
    finally:
        database.close()


def _head() -> str | None:
    script = ScriptDirectory.from_config(alembic_config(_profile_migrations(), "profile"))
    return script.get_current_head()


def _scratch_migrations(root: Path, revisions: int) -> Path:
    """An Alembic script directory of `revisions` steps: a table, then one column each."""
    (root / "versions").mkdir(parents=True)
    (root / "env.py").write_text(
        "import sqlalchemy as sa\n"
        "from mailwright.runtime.db import run_migrations\n"
        "run_migrations(sa.MetaData())\n"
    )
    for number in range(1, revisions + 1):
        down = repr(f"r{number - 1}") if number > 1 else "None"
        body = (
            "op.create_table('scratch_notes', sa.Column('id', sa.Integer, primary_key=True))"
            if number == 1
            else f"op.add_column('scratch_notes', sa.Column('c{number}', sa.Integer))"
        )
        (root / "versions" / f"r{number}.py").write_text(
            textwrap.dedent(
                f"""\
                import sqlalchemy as sa
                from alembic import op

                revision = "r{number}"
                down_revision = {down}
                branch_labels = None
                depends_on = None


                def upgrade() -> None:
                    {body}
                """
            )
        )
    return root


# -- the command over the installed services -------------------------------------------


def test_migrate_brings_every_service_with_tables_to_head(
    tmp_path: Path, database_url: str
) -> None:
    result = _run(tmp_path, database_url)

    assert result.exit_code == 0, result.output
    assert _revision(database_url) == _head()
    assert f"profile   migrated (empty) → {_head()}" in result.stdout


def test_migrate_names_the_services_that_have_no_tables(tmp_path: Path, sqlite_url: str) -> None:
    result = _run(tmp_path, sqlite_url)

    without = {d.name for d in service_definitions().values() if d.migrations is None}
    for name in without:
        assert f"{name}" in result.stdout
    assert result.stdout.count("has no tables") == len(without)


def test_migrating_twice_changes_nothing_the_second_time(tmp_path: Path, database_url: str) -> None:
    _run(tmp_path, database_url)

    again = _run(tmp_path, database_url)

    assert again.exit_code == 0, again.output
    assert f"profile   current at {_head()}" in again.stdout
    assert "migrated" not in again.stdout


def test_check_fails_naming_the_database_behind_and_changes_nothing(
    tmp_path: Path, database_url: str
) -> None:
    result = _run(tmp_path, database_url, "--check")

    assert result.exit_code == 1
    assert "behind the newest migration: profile" in result.stderr
    assert _revision(database_url) is None


def test_check_passes_once_migrated(tmp_path: Path, database_url: str) -> None:
    _run(tmp_path, database_url)

    result = _run(tmp_path, database_url, "--check")

    assert result.exit_code == 0, result.output


def test_service_option_migrates_only_the_services_named(tmp_path: Path, sqlite_url: str) -> None:
    result = _run(tmp_path, sqlite_url, "--service", "ingest")

    assert result.exit_code == 0, result.output
    assert "ingest  has no tables" in result.stdout
    assert "profile" not in result.stdout
    assert _revision(sqlite_url) is None


def test_unknown_service_is_refused_naming_the_installed_ones(
    tmp_path: Path, sqlite_url: str
) -> None:
    result = _run(tmp_path, sqlite_url, "--service", "billing")

    assert result.exit_code == 1
    assert "unknown service 'billing'" in result.stderr
    assert "profile" in result.stderr


def test_unreachable_database_is_a_one_line_error_without_the_password(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://mailwright:hunter2secret@127.0.0.1:{port}/mailwright_{{service}}"

    result = _run(tmp_path, url, "--service", "profile")

    assert result.exit_code == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: database of profile unreachable")
    assert "Connection refused" in message
    assert "hunter2secret" not in result.output
    assert "mailwright_profile" in message


def test_service_placeholder_gives_each_service_its_own_database(tmp_path: Path) -> None:
    template = f"sqlite:///{tmp_path}/db-{{service}}.sqlite"

    result = _run(tmp_path, template)

    assert result.exit_code == 0, result.output
    assert (tmp_path / "db-profile.sqlite").is_file()
    assert _revision(f"sqlite:///{tmp_path}/db-profile.sqlite") == _head()


def test_wait_without_check_is_a_usage_error(tmp_path: Path, sqlite_url: str) -> None:
    result = _run(tmp_path, sqlite_url, "--wait", "10s")

    assert result.exit_code == 2
    assert "--wait only goes with --check" in result.stderr


def test_bad_wait_duration_names_the_option(tmp_path: Path, sqlite_url: str) -> None:
    result = _run(tmp_path, sqlite_url, "--check", "--wait", "soon")

    assert result.exit_code == 2
    assert "'--wait'" in result.stderr


def test_check_with_wait_gives_up_at_the_deadline(tmp_path: Path, sqlite_url: str) -> None:
    result = _run(tmp_path, sqlite_url, "--check", "--wait", "100ms")

    assert result.exit_code == 1
    assert "behind the newest migration: profile" in result.stderr


def test_the_root_command_lists_migrate() -> None:
    result = CliRunner().invoke(cli, ["--help"])

    assert "migrate" in result.stdout


# -- the functions behind it ----------------------------------------------------------


def test_services_are_migrated_in_the_platform_order() -> None:
    available = {
        name: ServiceDefinition(name=name, create=lambda runtime: None)  # type: ignore[arg-type,return-value]
        for name in ("delivery", "profile", "ingest")
    }

    chosen = select_services(available, ["delivery", "ingest", "delivery"])

    assert [d.name for d in chosen] == ["ingest", "delivery"]
    assert [d.name for d in select_services(available, [])] == ["ingest", "profile", "delivery"]


def test_select_refuses_an_unknown_service() -> None:
    with pytest.raises(UnknownService, match="'billing'"):
        select_services({}, ["billing"])


def test_a_database_migrated_by_a_newer_release_is_left_alone(
    tmp_path: Path, database_url: str
) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    newer = _scratch_migrations(tmp_path / "newer", revisions=2)
    older = _scratch_migrations(tmp_path / "older", revisions=1)
    migrate_service(settings, "scratch", newer)

    done = migrate_service(settings, "scratch", older)

    assert done.before.status is SchemaStatus.NEWER
    assert not done.changed
    assert done.after.current == "r2"


def test_a_database_one_revision_behind_is_upgraded_to_head(
    tmp_path: Path, database_url: str
) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    migrate_service(settings, "scratch", _scratch_migrations(tmp_path / "v1", revisions=1))

    done = migrate_service(settings, "scratch", _scratch_migrations(tmp_path / "v3", revisions=3))

    assert (done.before.current, done.before.status) == ("r1", SchemaStatus.BEHIND)
    assert (done.after.current, done.after.status) == ("r3", SchemaStatus.CURRENT)
    columns = {
        c["name"] for c in sa.inspect(sa.create_engine(database_url)).get_columns("scratch_notes")
    }
    assert columns == {"id", "c2", "c3"}


def test_wait_returns_once_another_process_has_migrated(tmp_path: Path, database_url: str) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    migrations = _scratch_migrations(tmp_path / "m", revisions=2)
    definition = ServiceDefinition(
        name="scratch",
        create=lambda runtime: None,  # type: ignore[arg-type,return-value]
        migrations=migrations,
    )
    seen: list[str] = []

    def the_migration_job() -> None:
        time.sleep(0.3)
        migrate_service(settings, "scratch", migrations)

    job = threading.Thread(target=the_migration_job)
    job.start()
    try:
        states = wait_until_current(
            settings, [definition], timeout=30, interval=0.05, report=seen.append
        )
    finally:
        job.join()

    assert [s.status for s in states] == [SchemaStatus.CURRENT]
    assert seen[0].startswith("scratch: behind")
    assert seen[-1] == "scratch: current at r2"


def test_inspect_reports_an_empty_database_as_behind(tmp_path: Path, database_url: str) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path)

    state = inspect_service(settings, "scratch", _scratch_migrations(tmp_path / "m", 1))

    assert (state.current, state.head, state.status) == (None, "r1", SchemaStatus.BEHIND)


_MIGRATE_ON_GO = """
import sys
from pathlib import Path
from mailwright.runtime.db import Database
database = Database(sys.argv[1], service="profile", migrations=Path(sys.argv[2]), workers=1)
print("ready", flush=True)
sys.stdin.readline()
database.migrate()
database.close()
"""


@pytest.mark.postgres
def test_concurrent_migrations_of_one_postgres_database_take_turns(postgres_url: str) -> None:
    """Replicas starting together and the migration Job may all migrate at once."""
    command = [sys.executable, "-c", _MIGRATE_ON_GO, postgres_url, str(_profile_migrations())]
    processes = [
        subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    for process in processes:  # all at once, as far as the machine allows
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    failures = []
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        if process.returncode != 0:
            lines = stderr.strip().splitlines() or ["(no output)"]
            failures.append(next((line for line in lines if "Error:" in line), lines[-1]))

    assert failures == []
    assert _revision(postgres_url) == _head()
