"""A private NATS server speaking MQTT 3.1.1: the second broker the client, sync and demo tests run on.

NATS implements MQTT on JetStream, so the server needs a name and JetStream
(its store in the working directory: sessions and retained messages survive a
restart, as Mosquitto's persistence file keeps them). It listens on loopback
only. The first start lets the server pick a free MQTT port (no window in which
another process could take a port chosen beforehand) and reads it from the
server's own "Listening for MQTT clients" line; a restart listens on the same
port, so clients reconnect to it. Started is "Server is ready" in the log, not
a port that happens to accept a connection.

It is a parkcard.transport.broker.Broker for the tests (stop, kill, reload, context
manager); only the configuration and the start differ.
"""

import re
import subprocess
import threading

from parkcard.transport.broker import START_TIMEOUT_S, Broker, BrokerError, find_executable

NATS_CANDIDATES = ("nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server")
_MQTT_LISTENING = re.compile(r"Listening for MQTT clients on mqtt://[^\s]*:(\d+)")
_READY = "Server is ready"


def find_nats_server():
    """Return the path of nats-server or raise BrokerError."""
    path = find_executable(NATS_CANDIDATES)
    if path is None:
        raise BrokerError("nats-server is not installed: run ./setup.sh (it installs Debian's nats-server)")
    return path


class NatsBroker(Broker):
    """A nats-server process owned by this object, its MQTT listener on loopback."""

    def __init__(self, workdir, host="127.0.0.1"):
        super().__init__(workdir, host=host)
        self.port = 0  # the server picks it; known after the first start

    @property
    def config_path(self):
        """Path of the generated server config."""
        return self.workdir / "nats.conf"

    def write_config(self):
        """Write the config: server name, JetStream store in workdir, one MQTT listener."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        store = self.workdir / "jetstream"
        if any(c in str(store) for c in '"\n\r'):
            raise BrokerError("path unusable in nats.conf: %r" % str(store))
        self.config_path.write_text("\n".join([
            "server_name: parkcard-test",        # MQTT needs a named server
            "listen: %s:-1" % self.host,         # NATS clients: a random loopback port, unused
            'jetstream { store_dir: "%s" }' % store,
            "mqtt { listen: %s:%d }" % (self.host, self.port or -1),
        ]) + "\n")

    def start(self):
        """Start nats-server and wait for its "Server is ready" line; learn the MQTT port on the first start."""
        self.write_config()
        self.process = subprocess.Popen([find_nats_server(), "-c", str(self.config_path)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        ready = threading.Event()
        port = []
        threading.Thread(target=self._log, args=(self.process, ready, port), daemon=True).start()
        if not ready.wait(START_TIMEOUT_S) or not port:
            code = self.process.poll()
            self.stop()
            raise BrokerError("nats-server %s within %ss; see %s" % (
                "exited with %s" % code if code is not None else "not ready", START_TIMEOUT_S,
                self.workdir / "nats.log"))
        self.port = port[0]
        return self

    def _log(self, process, ready, port):
        """Copy the server's log to workdir/nats.log, noting the MQTT port and readiness as they appear."""
        with open(self.workdir / "nats.log", "a") as log:
            for line in iter(process.stderr.readline, b""):
                text = line.decode(errors="replace")
                log.write(text)
                log.flush()
                found = _MQTT_LISTENING.search(text)
                if found:
                    port.append(int(found.group(1)))
                if _READY in text:
                    ready.set()
        ready.set()  # exited: start() sees no port, or the process gone
