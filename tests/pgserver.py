"""A real PostgreSQL server for the tests: started once per session, a fresh database per test.

initdb + pg_ctl in a temp directory, on a free loopback port, fsync off (the data is thrown away). initdb
refuses to run as root, so as root the server runs as the `postgres` user (created if missing). Tests skip
with the reason only where no server can be had: no PostgreSQL binaries, or no psycopg driver.
RAGKIT_TEST_PG_URL=postgresql+psycopg://USER@HOST:PORT/DB uses a server you run instead (its user must be
allowed to CREATE DATABASE).

Fixtures (imported by tests/conftest.py): `pg_server` (session), `pg_url` (a fresh empty database, dropped
afterwards) and `db_url` (parametrized: a SQLite file, then a fresh Postgres database), for contract tests
that must hold on both backends.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

PG_USER = "postgres"
APP_ROLE = "ragkit_app"  # what a server should connect as: see docs/access-control.md


def find_pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<major>/bin."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[-3]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """A throwaway PostgreSQL cluster. `admin_url` reaches its `postgres` database as superuser."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        self.workdir = Path(tempfile.mkdtemp(prefix="ragkit-pg-"))
        self.data = self.workdir / "data"
        self.log = self.workdir / "server.log"
        self.port = 0

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", PG_USER, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> None:
        if self.as_root:
            try:
                pwd.getpwnam(PG_USER)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", PG_USER], check=True)
            shutil.chown(self.workdir, user=PG_USER)
        init = self._run("initdb", "-D", str(self.data), "-U", PG_USER, "-A", "trust", "-E", "UTF8", "--locale=C")
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        for _ in range(5):  # another process may take the free port between the probe and the bind
            self.port = _free_port()
            opts = (
                f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            started = self._run(
                "pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.log), "-w", "-t", "60", "start"
            )
            if started.returncode == 0:
                return
            time.sleep(0.2)
        log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()}\n{log}")

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/postgres"


class _AdminUrl:
    """Creates and drops databases through an admin connection URL."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        # CREATE/DROP DATABASE cannot run inside a transaction
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def create_database(self) -> str:
        name = f"ragkit_test_{uuid.uuid4().hex[:12]}"
        with self.engine.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def create_app_database(self) -> str:
        """A fresh database owned by APP_ROLE, a login role that is neither superuser nor BYPASSRLS, so
        PostgreSQL's row-level security binds it (a superuser, like the admin URL's, skips every policy)."""
        with self.engine.connect() as c:
            c.execute(
                text(
                    f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN "
                    f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE; END IF; END $$"
                )
            )
            name = f"ragkit_app_{uuid.uuid4().hex[:12]}"
            c.execute(text(f'CREATE DATABASE "{name}" OWNER {APP_ROLE}'))
        return make_url(self.admin_url).set(database=name, username=APP_ROLE).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        with self.engine.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[_AdminUrl]:
    """A PostgreSQL server for the whole session (started on first use, stopped at the end)."""
    pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg: pip install 'ragkit[pg]'")
    given = os.environ.get("RAGKIT_TEST_PG_URL")
    if given:
        admin = _AdminUrl(given)
        yield admin
        admin.engine.dispose()
        return
    bindir = find_pg_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL tests skipped: no initdb/pg_ctl found (install Debian's postgresql package; "
            "scripts/test.sh does it where apt-get is usable) and RAGKIT_TEST_PG_URL is not set"
        )
    server = PgServer(bindir)
    try:
        server.start()
        admin = _AdminUrl(server.admin_url)
        yield admin
        admin.engine.dispose()
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: _AdminUrl) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's server (dropped after the test)."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def pg_app_url(pg_server: _AdminUrl) -> Iterator[str]:
    """A fresh database owned by a role that row-level security binds (not a superuser); dropped afterwards."""
    url = pg_server.create_app_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL per backend: a SQLite file, then a fresh Postgres database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ragkit.db'}"
    return str(request.getfixturevalue("pg_url"))
