"""A real, throwaway PostgreSQL server on 127.0.0.1 for the APDB tests (Debian's ``postgresql``).

`PgServer.start` runs ``initdb`` in a temporary directory, ``pg_ctl start`` on
a free port (socket in that directory, no fsync) and ``createdb``; `stop`
stops it and removes the directory. `halt` and `resume` stop and start the
same server, its data kept (a database outage). Authentication over TCP is by password
(scram-sha-256), so wrong credentials can be tested. PostgreSQL refuses to
run as root: as root the server runs as the ``postgres`` user (made by the
Debian package) through ``runuser``. Debian keeps the server binaries in
``/usr/lib/postgresql/<major>/bin``, off PATH. Fixture:

``postgres_server``
    One server for the whole session (skipped, saying why, when PostgreSQL
    is not installed: ``apt-get install -y postgresql``, as ``make
    system-deps`` does).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PgServer", "pg_bindir", "postgres_server"]


def pg_bindir() -> Path | None:
    """Directory of ``initdb``/``pg_ctl``: PATH, else the newest Debian cluster version."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if not candidates:
        return None
    newest = max(candidates, key=lambda p: int(Path(p).parent.parent.name.split(".")[0]))
    return Path(newest).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgServer:
    """One PostgreSQL server; ``url`` carries no password (DbAuth supplies it)."""

    user = "apdb"
    password = "apdb-test-pw"
    dbname = "apdb"

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="alertpack-pg-"))
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            account = "postgres" if _user_exists("postgres") else "nobody"
            self._run_as = ["runuser", "-u", account, "--"]
            entry = pwd.getpwnam(account)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        """SQLAlchemy URL with the psycopg2 driver (``Apdb.store`` fails with psycopg 3)."""
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.dbname}"

    @property
    def auth_env(self) -> str:
        """``LSST_DB_AUTH_CREDENTIALS`` value that gives DbAuth this server's password."""
        import json

        url = f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.dbname}"
        return json.dumps([{"url": url, "password": self.password}])

    def _run(self, *command: str) -> None:
        subprocess.run([*self._run_as, *command], check=True, capture_output=True, timeout=60)

    def start(self) -> PgServer:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._run_as:
            shutil.chown(pwfile, self._run_as[2])
        data = self.root / "data"
        self._run(
            str(self.bindir / "initdb"), "-D", str(data), "-U", self.user, f"--pwfile={pwfile}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync",
        )
        self.resume()
        self._run(str(self.bindir / "createdb"), "-h", str(self.root), "-p", str(self.port),
                  "-U", self.user, self.dbname)
        return self

    def resume(self) -> None:
        """Start the server on its data directory; returns when it accepts connections."""
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -F"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-l",
                  str(self.root / "log"), "-o", options, "-w", "start")

    def halt(self) -> None:
        """Stop the server (fast shutdown: connections are cut), keeping its data."""
        subprocess.run(
            [*self._run_as, str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"),
             "-m", "fast", "-w", "stop"],
            check=False, capture_output=True, timeout=60,
        )

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    bindir = pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install -y postgresql)")
    server = PgServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()
