"""Run a private Mosquitto broker: generated config, free loopback port, clean stop."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
START_TIMEOUT_S = 10.0


class BrokerError(RuntimeError):
    """The broker could not be found or did not start."""


def find_mosquitto():
    """Return the path of the mosquitto executable or raise BrokerError."""
    for candidate in MOSQUITTO_CANDIDATES:
        path = shutil.which(candidate) or (candidate if os.access(candidate, os.X_OK) else None)
        if path:
            return path
    raise BrokerError("mosquitto is not installed: run ./setup.sh (it installs Debian's mosquitto)")


def free_port(host="127.0.0.1"):
    """Return a TCP port on host that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Broker:
    """A Mosquitto process owned by this object, listening on loopback."""

    def __init__(self, workdir, port=None, host="127.0.0.1", extra_config=""):
        self.workdir = Path(workdir)
        self.host = host
        self.port = port or free_port(host)
        self.extra_config = extra_config
        self.process = None

    @property
    def config_path(self):
        """Path of the generated mosquitto.conf."""
        return self.workdir / "mosquitto.conf"

    def write_config(self):
        """Write the broker config: one loopback listener, persistence in workdir."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            "per_listener_settings false",
            f"listener {self.port} {self.host}",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "max_inflight_messages 100",
            "max_queued_messages 100000",
            # Small QoS 1 frames and their PUBACKs: Nagle would hold them back.
            "set_tcp_nodelay true",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Started as root, mosquitto drops to its own user and could no longer
            # write its persistence file in our working directory.
            lines.append("user root")
        if not self.extra_config:
            lines.append("allow_anonymous true")
        else:
            lines.append(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self):
        """Start mosquitto and wait until its port accepts connections."""
        self.write_config()
        log = open(self.workdir / "mosquitto.log", "ab")
        self.process = subprocess.Popen(
            [find_mosquitto(), "-c", str(self.config_path)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"mosquitto exited with {self.process.returncode}; see {self.workdir}/mosquitto.log")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)  # polling a port that is still opening
        self.stop()
        raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port} within {START_TIMEOUT_S}s")

    def stop(self):
        """Stop the broker (SIGTERM, then SIGKILL) and wait for it."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self):
        """Kill the broker abruptly, as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
