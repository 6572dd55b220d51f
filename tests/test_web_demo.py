"""`parkcard demo` prints the web app's address and a demo login; `--serve` keeps the park open until Ctrl-C."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

PARKCARD = str(Path(sys.executable).with_name("parkcard"))
LINES_MAX = 80

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_demo_serve_keeps_the_park_open_with_its_web_app_until_ctrl_c(tmp_path):
    proc = subprocess.Popen([PARKCARD, "demo", "--taps", "10", "--no-offline", "--serve", "--dir", str(tmp_path / "p")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    seen = []
    try:
        url = None
        for _ in range(LINES_MAX):
            line = proc.stdout.readline()
            seen.append(line)
            if line.startswith("web app: "):
                url = line.split()[2]
                assert "log in as demo / demo-park-admin (admin)" in line
            if "Ctrl-C closes it" in line:
                break
        assert url is not None and "Ctrl-C closes it" in seen[-1], "".join(seen)
        login = httpx.get(url + "login", timeout=30)
        assert login.status_code == 200 and 'name="password"' in login.text
        assert httpx.get(url + "fleet", timeout=30, follow_redirects=False).status_code == 303   # login first
        with httpx.Client(base_url=url, timeout=30, follow_redirects=True) as browser:
            form = browser.get("login")
            csrf = form.cookies["parkcard_login"]
            logged = browser.post("login", data={"csrf": csrf, "username": "demo", "password": "demo-park-admin"})
            assert logged.status_code == 200 and "term-2" in logged.text       # the fleet, after the redirect
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(seen) + rest
    assert "closing the park" in rest and "Traceback" not in rest
    text = "".join(seen)
    assert "ledger check" in text
