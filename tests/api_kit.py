"""The hub as `parkcard up` starts it, with its API on a free port: for the API tests (test_api*.py)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

PARKCARD = str(Path(sys.executable).with_name("parkcard"))
START_LINES_MAX = 50      # lines `up` prints before the API's address, at most


def cli(workdir, db, *args):
    """Run `parkcard --db db ARGS` in workdir; return the CompletedProcess (text)."""
    return subprocess.run([PARKCARD, "--db", db, *args], cwd=workdir, capture_output=True, text=True, timeout=60)


def api_key(workdir, db, name, *scopes):
    """Create an API key with the CLI; return its secret (the second line `apikey create` prints)."""
    args = [a for s in scopes for a in ("--scope", s)]
    out = cli(workdir, db, "apikey", "create", "--name", name, *args)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[1]


class UpHub:
    """`parkcard --db DB up --insecure --web-port 0` in workdir (its own Mosquitto); url: the API's base."""

    def __init__(self, workdir, db):
        self.workdir = workdir
        self.db = db
        self.proc = None
        self.url = None

    def start(self):
        """Start it and read the API's address from what it prints (the port is bound before it prints)."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # The logs to a file: a pipe nobody reads would fill and stop the hub.
        with open(Path(self.workdir) / "up.log", "w") as log:
            self.proc = subprocess.Popen([PARKCARD, "--db", self.db, "up", "--insecure", "--web-port", "0"],
                                         cwd=self.workdir, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        seen = []
        for _ in range(START_LINES_MAX):
            line = self.proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("api listening on "):
                self.url = line.split()[3]
                return self
        self.stop()
        raise AssertionError("parkcard up printed no API address:\n%s%s" % (
            "".join(seen), (Path(self.workdir) / "up.log").read_text()))

    def client(self, secret=None):
        """An httpx client of the API, with the key's bearer header when given."""
        headers = {"Authorization": "Bearer %s" % secret} if secret else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self):
        """SIGTERM, as a supervisor stops it; return its exit status."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        finally:
            self.proc.stdout.close()
        return self.proc.returncode
