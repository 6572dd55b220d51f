"""A private PostgreSQL cluster for tests and benches: initdb in a temp dir, pg_ctl on a free loopback port.

The cluster listens on 127.0.0.1 only, keeps its unix socket in its own
folder, runs with fsync on (what a park runs), and is stopped and removed
with stop(). Each test gets a database of its own (create_database). The
programs come from Debian's `postgresql` package (installed by setup.sh);
PostgreSQL refuses to run as root, so under root the cluster runs as the
`postgres` user the package creates.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

from parkcard.store.postgres.url import with_audit_log  # noqa: F401 - the test kit's URLs name their audit log

# Debian's packages put each major version's programs in /usr/lib/postgresql/<major>/bin: the newest first.
BIN_DIRS = (*sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]), reverse=True),
            "/usr/local/bin", "/usr/bin")
START_TIMEOUT_S = 60
SUPERUSER = "parkcard"
_PORT_TRIES = 5


def bin_dir():
    """Return the folder holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    for folder in BIN_DIRS:
        if os.access(os.path.join(folder, "initdb"), os.X_OK) and os.access(os.path.join(folder, "pg_ctl"), os.X_OK):
            return folder
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One cluster owned by this process; start() it, hand out databases, stop() it."""

    def __init__(self, workdir=None):
        self.bin = bin_dir()
        if self.bin is None:
            raise FileNotFoundError("PostgreSQL is not installed (no initdb/pg_ctl in %s): run ./setup.sh"
                                    % ", ".join(BIN_DIRS))
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="parkcard-pg-"))
        self.data = self.workdir / "data"
        self.port = None
        self._owner = None
        if os.geteuid() == 0:
            self._owner = pwd.getpwnam("postgres")
            os.chown(self.workdir, self._owner.pw_uid, self._owner.pw_gid)
            self.workdir.chmod(0o700)

    def _run(self, *args, check=True):
        cmd = [os.path.join(self.bin, args[0]), *args[1:]]
        if self._owner is not None:
            cmd = ["setpriv", "--reuid", str(self._owner.pw_uid), "--regid", str(self._owner.pw_gid),
                   "--init-groups", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=START_TIMEOUT_S)

    def start(self):
        """initdb (trust auth for loopback, one superuser) and start on a free port; return self."""
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
                  "--locale=C.UTF-8")
        for _ in range(_PORT_TRIES):
            done = self._pg_start(_free_port())
            if done.returncode == 0:
                return self
        raise RuntimeError("PostgreSQL did not start: %s %s" % (done.stdout, self.log_tail()))

    def _pg_start(self, port):
        options = "-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=on -c max_connections=200" % (
            port, self.workdir)
        done = self._run("pg_ctl", "start", "-w", "-t", str(START_TIMEOUT_S), "-D", str(self.data),
                         "-l", str(self.workdir / "server.log"), "-o", options, check=False)
        if done.returncode == 0:
            self.port = port
        return done

    def halt(self):
        """Stop the server (fast shutdown: sessions are cut) and keep its data, to resume() it later."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w")

    def resume(self):
        """Start a halted server again on its port."""
        done = self._pg_start(self.port)
        if done.returncode != 0:
            raise RuntimeError("PostgreSQL did not start again: %s %s" % (done.stdout, self.log_tail()))

    def log_tail(self, lines=20):
        """The end of the server's log (for failure messages)."""
        try:
            return "\n".join((self.workdir / "server.log").read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def url(self, database="postgres"):
        """The connection URL of one of the cluster's databases."""
        return "postgresql://%s@127.0.0.1:%d/%s" % (SUPERUSER, self.port, database)

    def create_database(self, name=None):
        """Create an empty database; return its URL."""
        name = name or "t_" + uuid.uuid4().hex[:16]
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres", "-q",
                  "-c", 'CREATE DATABASE "%s" TEMPLATE template0' % name)
        return self.url(name)

    def stop(self):
        """Stop the cluster (fast shutdown) and remove its folder."""
        if self.port is not None:
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", check=False)
            self.port = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def tamper(url, *statements):
    """Change a database behind the hub's back as its superuser could: every trigger (append-only, foreign
    keys) switched off for the session first (session_replication_role = replica)."""
    import asyncio

    import asyncpg

    from parkcard.store.postgres.url import split

    async def run():
        conn = await asyncpg.connect(split(url)[0])
        try:
            await conn.execute("SET session_replication_role = replica")
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()
    asyncio.run(run())
