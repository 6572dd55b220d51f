"""`parkcard up` after `parkcard init` serves the web app over HTTPS with the park's certificate, and its
cookies are then Secure as well as HttpOnly and SameSite=Strict."""

import signal
import socket
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from api_kit import PARKCARD, START_LINES_MAX, cli

pytestmark = [pytest.mark.broker]


def free_port():
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_up_serves_the_web_app_over_https_with_secure_cookies(tmp_path):
    db = str(tmp_path / "var" / "parkcard.db")
    made = cli(tmp_path, db, "init")
    assert made.returncode == 0, made.stderr
    with open(tmp_path / "up.log", "w") as log:
        proc = subprocess.Popen([PARKCARD, "--db", db, "up", "--broker-port", str(free_port()), "--web-port", "0",
                                 "--time-zone", "Asia/Shanghai"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=log,
                                text=True)
    try:
        url, seen = None, []
        for _ in range(START_LINES_MAX):
            line = proc.stdout.readline()
            seen.append(line)
            if line.startswith("web app on "):
                url = line.split()[3]
                break
        assert url is not None and url.startswith("https://127.0.0.1:"), "".join(seen) + (tmp_path / "up.log").read_text()
        ca = Path(db).parent / "pki" / "ca.crt"
        response = httpx.get(url + "login", verify=ssl.create_default_context(cafile=str(ca)), timeout=30)
        assert response.status_code == 200
        cookie = response.headers["set-cookie"].lower()
        assert "parkcard_login=" in cookie and "secure" in cookie and "httponly" in cookie
        assert "samesite=strict" in cookie
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        proc.stdout.close()
    assert proc.returncode == 0


def test_up_refuses_a_time_zone_it_does_not_know(tmp_path):
    out = cli(tmp_path, str(tmp_path / "hub.db"), "up", "--insecure", "--web-port", "0", "--time-zone", "Mars/Olympus")
    assert out.returncode == 2 and "not a time zone" in out.stderr and "Traceback" not in out.stderr
