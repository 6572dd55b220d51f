"""Run a private Mosquitto broker: generated config, free loopback port, clean stop.

By default the broker is open (anonymous, plaintext) for tests. The park runs it
secure: `Broker(workdir, tls=BrokerTLS(...), password_file=..., acl_file=...)`
gives one TLS listener and no plaintext one, no anonymous clients, a client id
forced to the username, and the per-terminal ACL (parkcard.transport.broker_auth).
"""

import os
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from protocol import hub_frames

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
PACKET_SIZE_MAX = hub_frames.FRAME_SIZE_MAX + 512     # MQTT fixed header, topic (SPEC.md §5.1) and packet id
START_TIMEOUT_S = 10.0
# Every terminal connection is an open file in the broker. A soft limit of 1024 (a common default)
# let Mosquitto accept 1,015 of 1,100 terminals: the broker gets this many, capped by the hard limit.
OPEN_FILES_TARGET = 65536
# Descriptors the broker needs besides connections: listener sockets, its log, config, password and
# ACL files, the epoll descriptor. `up` promises terminals what is left of the limit.
OPEN_FILES_RESERVE = 32
_rlimit_lock = threading.Lock()     # one broker start at a time changes this process's own limit


class BrokerError(RuntimeError):
    """The broker could not be found or did not start."""


def find_executable(candidates):
    """Return the first of candidates (names on PATH or absolute paths) that can run, or None."""
    for candidate in candidates:
        path = shutil.which(candidate) or (candidate if os.access(candidate, os.X_OK) else None)
        if path:
            return path
    return None


def find_mosquitto():
    """Return the path of the mosquitto executable or raise BrokerError."""
    path = find_executable(MOSQUITTO_CANDIDATES)
    if path is None:
        raise BrokerError("mosquitto is not installed: run ./setup.sh (it installs Debian's mosquitto)")
    return path


def free_port(host="127.0.0.1"):
    """Return a TCP port on host that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class BrokerTLS:
    """The listener's TLS files (parkcard.security.pki.ParkPKI.broker_tls() makes one)."""

    cafile: Path
    certfile: Path
    keyfile: Path
    # Mosquitto 2.0 reads this as the minimum version; ESP32 mbedTLS speaks 1.2.
    tls_version: str = "tlsv1.2"


class Broker:
    """A Mosquitto process owned by this object, listening on loopback.

    tls: a BrokerTLS, making the one listener TLS-only.
    password_file: a Mosquitto password file (broker_auth.write_password_file);
    with it anonymous clients are refused and each client id is its username.
    acl_file: a Mosquitto ACL file (broker_auth.write_acl_file).
    """

    def __init__(self, workdir, port=None, host="127.0.0.1", extra_config="", tls=None, password_file=None,
                 acl_file=None):
        self.workdir = Path(workdir)
        self.host = host
        self.port = port or free_port(host)
        self.extra_config = extra_config
        self.tls = tls
        self.password_file = Path(password_file) if password_file else None
        self.acl_file = Path(acl_file) if acl_file else None
        self.process = None
        self.open_files_max = None     # the broker's soft RLIMIT_NOFILE once started

    @property
    def connections_max(self):
        """How many client connections the running broker can hold: its open-file limit less the reserve."""
        return None if self.open_files_max is None else max(0, self.open_files_max - OPEN_FILES_RESERVE)

    @property
    def secure(self):
        """True when clients need TLS and a password."""
        return self.tls is not None and self.password_file is not None

    @property
    def config_path(self):
        """Path of the generated mosquitto.conf."""
        return self.workdir / "mosquitto.conf"

    def write_config(self):
        """Write the broker config: one listener, no persistence, packets bounded by the protocol."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            "per_listener_settings false",
            f"listener {self.port} {self.host}",
            *self._listener_lines(),
            # The broker is trusted with nothing durable (README, "Reliability"): a terminal keeps
            # every record until the hub's own ack, and the hub re-sends what a terminal lacks when
            # it syncs. Persistence would only pretend otherwise: Mosquitto writes it on a clean stop.
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            # The largest frame the protocol allows, its topic and the MQTT header: anything bigger
            # is refused by the broker (the client is disconnected) before it costs the hub memory.
            f"max_packet_size {PACKET_SIZE_MAX}",
            "max_inflight_messages 100",
            "max_queued_messages 100000",
            # Small QoS 1 frames and their PUBACKs: Nagle would hold them back.
            "set_tcp_nodelay true",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Started as root, mosquitto drops to its own user, which may not read the files
            # this process wrote in its working directory (private keys and passwords are 0600).
            lines.append("user root")
        if self.password_file is not None:
            lines += ["allow_anonymous false", f"password_file {_config_path(self.password_file)}"]
        elif not self.extra_config:
            lines.append("allow_anonymous true")
        if self.acl_file is not None:
            lines.append(f"acl_file {_config_path(self.acl_file)}")
        if self.extra_config:
            lines.append(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n")

    def _listener_lines(self):
        """Options of the one listener: TLS files, and the client id tied to the username."""
        lines = []
        if self.tls is not None:
            lines += [
                f"cafile {_config_path(self.tls.cafile)}",
                f"certfile {_config_path(self.tls.certfile)}",
                f"keyfile {_config_path(self.tls.keyfile)}",
                f"tls_version {self.tls.tls_version}",
            ]
        if self.password_file is not None:
            # A client id is then its username: term-2 cannot take over term-1's
            # session or its %c-named topics by claiming client id term-1.
            lines.append("use_username_as_clientid true")
        return lines

    def start(self):
        """Start mosquitto and wait until it listens; BrokerError says why it did not (its log line)."""
        self.write_config()
        _check_port_free(self.host, self.port)
        log_path = self.workdir / "mosquitto.log"
        log = open(log_path, "ab")
        log_from = log.tell()     # the log is kept across runs: report only this run's lines
        with _rlimit_lock, _open_files_raised() as open_files_max:
            self.process = subprocess.Popen(
                [find_mosquitto(), "-c", str(self.config_path)],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            )
        self.open_files_max = open_files_max
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError("mosquitto exited with %d: %s (log: %s)" % (
                    self.process.returncode, _last_error(log_path, log_from), log_path))
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    pass
            except OSError:
                time.sleep(0.02)  # polling a port that is still opening
                continue
            if self.process.poll() is None:
                return self
        if self.process.poll() is not None:
            raise BrokerError("mosquitto exited with %d: %s (log: %s)" % (
                self.process.returncode, _last_error(log_path, log_from), log_path))
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

    def reload(self):
        """Make the running broker re-read its password and ACL files (SIGHUP), e.g. after adding a terminal."""
        if self.process is None or self.process.poll() is not None:
            raise BrokerError("mosquitto is not running")
        self.process.send_signal(signal.SIGHUP)

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


class _open_files_raised:
    """Raise this process's soft RLIMIT_NOFILE to OPEN_FILES_TARGET (capped by the hard limit) while a
    child is started, then restore it; the child keeps the raised limit. Value: the child's soft limit.

    Not a preexec_fn: Python calls it in the forked child, which is unsafe while other threads run
    (the hub's paho thread, a test's terminals).
    """

    def __enter__(self):
        self._before = resource.getrlimit(resource.RLIMIT_NOFILE)
        soft, hard = self._before
        target = OPEN_FILES_TARGET if hard == resource.RLIM_INFINITY else min(OPEN_FILES_TARGET, hard)
        if soft == resource.RLIM_INFINITY or soft >= target:
            return soft
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target

    def __exit__(self, *exc):
        resource.setrlimit(resource.RLIMIT_NOFILE, self._before)


def _check_port_free(host, port):
    """Raise BrokerError when something already listens on host:port.

    Without this a connect to the other listener would pass for ours while our
    mosquitto is still on its way to exiting with "Address already in use".
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as mosquitto binds: TIME_WAIT is no owner
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise BrokerError("cannot listen on %s:%d: %s (another broker or `parkcard up` runs there? "
                              "choose another --broker-port)" % (host, port, exc.strerror or exc)) from None


def _last_error(log_path, offset):
    """The last line mosquitto wrote to its log since offset (its reason to exit)."""
    try:
        with open(log_path, "rb") as fh:
            fh.seek(offset)
            lines = [line.strip() for line in fh.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "no log line"


def _config_path(path):
    """An absolute path for mosquitto.conf, which has no quoting."""
    text = str(Path(path).resolve())
    if any(c in text for c in "\n\r") or text != text.strip():
        raise BrokerError(f"path unusable in mosquitto.conf: {text!r}")
    return text
