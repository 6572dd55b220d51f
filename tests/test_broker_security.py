"""The broker's security: park PKI, TLS-only listener, per-terminal passwords and ACL.

Against a real Mosquitto started with the generated config. Forbidden traffic is
checked without sleeping: the forbidden message goes first, an allowed marker
after it on the same path, and the marker's arrival proves the forbidden one
was dropped (Mosquitto handles one connection's packets in order).
"""

import datetime
import queue
import socket
import ssl
import stat
import threading

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import MPY_SCRIPTS
from parkcard.security import pki
from parkcard.transport import broker_auth
from parkcard.transport.broker import Broker, BrokerTLS
from protocol import topics

WAIT_S = 10
HUB = broker_auth.HUB_USERNAME


# ---------------------------------------------------------------- files


def test_ensure_pki_creates_a_p256_ca_and_a_server_certificate(tmp_path):
    made = pki.ensure_pki(tmp_path / "pki", ["parkhub.lan", "10.20.0.5"])
    assert sorted(made.created) == ["ca.crt", "ca.key", "server.crt", "server.key"]
    for key in (made.ca_key, made.server_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca = pki.load_cert(made.ca_cert)
    server = pki.load_cert(made.server_cert)
    assert isinstance(ca.public_key().curve, ec.SECP256R1)
    assert isinstance(server.public_key().curve, ec.SECP256R1)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= datetime.timedelta(days=3650)
    server.verify_directly_issued_by(ca)
    assert pki.san_names(server) == {"localhost", "127.0.0.1", "parkhub.lan", "10.20.0.5"}
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_ensure_pki_is_idempotent_and_creates_only_what_is_missing(tmp_path):
    first = pki.ensure_pki(tmp_path, ["parkhub.lan"])
    files = {p: p.read_bytes() for p in (first.ca_cert, first.ca_key, first.server_cert, first.server_key)}
    assert pki.ensure_pki(tmp_path, ["parkhub.lan"]).created == ()
    assert {p: p.read_bytes() for p in files} == files

    added = pki.ensure_pki(tmp_path, ["parkhub.lan", "gate.parkhub.lan"])
    assert sorted(added.created) == ["server.crt", "server.key"]
    assert first.ca_cert.read_bytes() == files[first.ca_cert]
    assert "gate.parkhub.lan" in pki.san_names(pki.load_cert(added.server_cert))

    first.server_key.unlink()
    assert sorted(pki.ensure_pki(tmp_path).created) == ["server.crt", "server.key"]


def test_ensure_pki_refuses_to_replace_a_ca_with_its_key_missing(tmp_path):
    made = pki.ensure_pki(tmp_path)
    made.ca_key.unlink()
    with pytest.raises(pki.PKIError, match="without its pair"):
        pki.ensure_pki(tmp_path)


def test_ensure_pki_reissues_a_server_certificate_from_another_ca(tmp_path):
    made = pki.ensure_pki(tmp_path / "a")
    other = pki.ensure_pki(tmp_path / "b")
    made.server_cert.write_bytes(other.server_cert.read_bytes())
    made.server_key.write_bytes(other.server_key.read_bytes())
    assert sorted(pki.ensure_pki(tmp_path / "a").created) == ["server.crt", "server.key"]
    pki.load_cert(made.server_cert).verify_directly_issued_by(pki.load_cert(made.ca_cert))


def test_password_file_is_hashed_by_mosquitto_passwd_and_private(tmp_path):
    path = tmp_path / "passwd"
    broker_auth.write_password_file(path, {"term-2": "two", HUB: "hub", "term-1": "one"})
    lines = path.read_text().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["parkcard-hub", "term-1", "term-2"]
    assert all(line.split(":", 1)[1].startswith("$7$101$") for line in lines)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwd"]


@pytest.mark.parametrize("credentials", [{"term 1": "x"}, {"term:1": "x"}, {"term-1": "a\nb"}, {"term-1": ""},
                                         {"+": "x"}])
def test_password_file_refuses_unusable_names_and_passwords(tmp_path, credentials):
    with pytest.raises(broker_auth.BrokerAuthError):
        broker_auth.write_password_file(tmp_path / "passwd", credentials)
    assert list(tmp_path.iterdir()) == []


def test_acl_grants_terminals_their_own_topics_and_the_hub_all():
    assert broker_auth.acl_text("parkcard-hub").splitlines()[3:] == [
        "pattern write parkcard/%u/up",
        "pattern write parkcard/%u/status",
        "pattern read parkcard/%u/down",
        "",
        "user parkcard-hub",
        "topic read parkcard/+/up",
        "topic read parkcard/+/status",
        "topic write parkcard/+/down",
    ]


def test_generated_passwords_are_long_and_distinct():
    names = [broker_auth.terminal_credentials(n) for n in (1, 2)]
    assert [n for n, _ in names] == ["term-1", "term-2"]
    assert names[0][1] != names[1][1] and len(names[0][1]) >= 32


def test_default_broker_config_is_still_open_plaintext(tmp_path):
    broker = Broker(tmp_path)
    broker.write_config()
    config = broker.config_path.read_text().splitlines()
    assert "allow_anonymous true" in config and "set_tcp_nodelay true" in config
    assert not [line for line in config if line.split()[0] in ("certfile", "password_file", "acl_file")]


def test_secure_broker_config_has_one_tls_listener_and_no_anonymous(tmp_path):
    tls = BrokerTLS(tmp_path / "ca.crt", tmp_path / "server.crt", tmp_path / "server.key")
    broker = Broker(tmp_path, tls=tls, password_file=tmp_path / "passwd", acl_file=tmp_path / "acl")
    broker.write_config()
    config = broker.config_path.read_text().splitlines()
    assert [line for line in config if line.startswith(("listener", "port"))] == [f"listener {broker.port} 127.0.0.1"]
    for line in ("tls_version tlsv1.2", "allow_anonymous false", "use_username_as_clientid true",
                 "per_listener_settings false", "set_tcp_nodelay true", f"certfile {tmp_path}/server.crt",
                 f"password_file {tmp_path}/passwd", f"acl_file {tmp_path}/acl"):
        assert line in config
    assert "allow_anonymous true" not in config


# ---------------------------------------------------------------- a secure broker


class Park:
    """A running secure broker with its PKI and the passwords of the hub and terminals 1 and 2."""

    def __init__(self, root):
        self.root = root
        self.pki = pki.ensure_pki(root / "pki")
        self.passwords = {HUB: broker_auth.new_password()}
        for n in (1, 2):
            name, password = broker_auth.terminal_credentials(n)
            self.passwords[name] = password
        broker_auth.write_password_file(root / "passwd", self.passwords)
        broker_auth.write_acl_file(root / "acl")
        self.broker = Broker(root / "broker", tls=self.pki.broker_tls(), password_file=root / "passwd",
                             acl_file=root / "acl")
        self.ca_der = root / "ca.der"
        self.ca_der.write_bytes(self.pki.ca_der())


@pytest.fixture(scope="module")
def park(tmp_path_factory):
    park = Park(tmp_path_factory.mktemp("park"))
    with park.broker:
        yield park


class Session:
    """A paho client over TLS; connect() returns the CONNACK reason, messages land in a queue."""

    def __init__(self, park, username, password=None, client_id=None, ca=None, will=None):
        self.messages = queue.Queue()
        self.connack = queue.Queue()
        self.subacks = queue.Queue()
        self.dropped = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or username or "anon",
                                  clean_session=True, protocol=mqtt.MQTTv311)
        self.client.tls_set(ca_certs=str(ca or park.pki.ca_cert))
        if username:
            self.client.username_pw_set(username, park.passwords.get(username) if password is None else password)
        if will:
            self.client.will_set(will[0], will[1], qos=1)
        self.client.reconnect_delay_set(WAIT_S * 10, WAIT_S * 20)   # a refused or kicked client stays down
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(rcs)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.client.on_disconnect = lambda *a: self.dropped.set()
        self.park = park

    def connect(self):
        self.client.connect(self.park.broker.host, self.park.broker.port, keepalive=30)
        self.client.loop_start()
        return self.connack.get(timeout=WAIT_S)

    def subscribe(self, *filters):
        self.client.subscribe([(f, 1) for f in filters])
        return [rc.value for rc in self.subacks.get(timeout=WAIT_S)]

    def publish(self, topic, payload, retain=False):
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(WAIT_S)     # PUBACK: the broker has handled it
        assert info.is_published()

    def until(self, payload):
        """Every message up to and including the first with this payload."""
        seen = []
        while not seen or seen[-1][1] != payload:
            seen.append(self.messages.get(timeout=WAIT_S))
        return seen

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def connect(park):
    opened = []

    def open_session(username, **options):
        session = Session(park, username, **options)
        rc = session.connect()
        opened.append(session)
        assert rc == 0, f"{username}: CONNACK {rc}"
        return session

    yield open_session
    for session in opened:
        session.close()


def t(n, leaf):
    return topics.topic(n, leaf)


@pytest.mark.broker
def test_terminal_publishes_its_own_up_and_status_and_receives_its_own_down(connect):
    hub = connect(HUB)
    assert hub.subscribe("parkcard/+/up", "parkcard/+/status") == [1, 1]
    term = connect("term-1")
    assert term.subscribe(t(1, "down")) == [1]
    term.publish(t(1, "status"), b"online")
    term.publish(t(1, "up"), b"batch")
    assert hub.until(b"batch") == [(t(1, "status"), b"online"), (t(1, "up"), b"batch")]
    hub.publish(t(1, "down"), b"ack")
    assert term.until(b"ack") == [(t(1, "down"), b"ack")]


@pytest.mark.broker
def test_terminal_cannot_publish_on_another_terminals_topics(connect):
    hub = connect(HUB)
    hub.subscribe("parkcard/#")
    term = connect("term-1")
    for leaf in (topics.UP, topics.STATUS, topics.DOWN):
        term.publish(t(2, leaf), b"forged " + leaf.encode())
    term.publish(t(1, "down"), b"forged own down")     # a terminal only reads its down topic
    term.publish("parkcard/elsewhere", b"forged elsewhere")
    term.publish(t(1, "up"), b"marker")
    assert hub.until(b"marker") == [(t(1, "up"), b"marker")]


@pytest.mark.broker
def test_terminal_never_receives_another_terminals_down_messages(connect):
    term = connect("term-1")
    # Mosquitto 2.0.11 grants these subscriptions and filters at delivery, by the read ACL.
    assert term.subscribe(t(2, "down"), "parkcard/+/down", "parkcard/#", t(1, "down")) == [1, 1, 1, 1]
    hub = connect(HUB)
    hub.publish(t(2, "down"), b"for term-2")
    hub.publish(t(1, "down"), b"marker")
    assert {m for m in term.until(b"marker")} == {(t(1, "down"), b"marker")}


@pytest.mark.broker
def test_terminal_cannot_plant_a_last_will_on_another_terminals_status(connect):
    hub = connect(HUB)
    hub.subscribe("parkcard/+/status")
    for will, delivered in (((t(2, "status"), b"forged will"), []),
                            ((t(1, "status"), b"own will"), [(t(1, "status"), b"own will")])):
        connect("term-1", will=will)
        # The same username takes the session over; Mosquitto publishes the old
        # connection's will while it handles this CONNECT, before the marker.
        connect("term-1").publish(t(1, "status"), b"marker")
        assert hub.until(b"marker") == delivered + [(t(1, "status"), b"marker")]


@pytest.mark.broker
def test_client_id_is_the_username_so_a_terminal_cannot_take_over_another(connect):
    victim = connect("term-1")
    victim.subscribe(t(1, "down"))
    connect("term-2", client_id="term-1")
    hub = connect(HUB)
    hub.publish(t(1, "down"), b"still here")
    assert victim.until(b"still here") == [(t(1, "down"), b"still here")]
    assert not victim.dropped.is_set()


@pytest.mark.broker
def test_hub_reads_every_terminals_up_and_status_and_writes_every_down(connect):
    hub = connect(HUB)
    hub.subscribe("parkcard/+/up", "parkcard/+/status")
    terms = {n: connect(topics.client_name(n)) for n in (1, 2)}
    for n, term in terms.items():
        term.subscribe(t(n, "down"))
        term.publish(t(n, "up"), b"up %d" % n)
        assert hub.until(b"up %d" % n) == [(t(n, "up"), b"up %d" % n)]
        term.publish(t(n, "status"), b"status %d" % n)
        assert hub.until(b"status %d" % n) == [(t(n, "status"), b"status %d" % n)]
        hub.publish(t(n, "down"), b"down %d" % n)
        assert term.until(b"down %d" % n) == [(t(n, "down"), b"down %d" % n)]


@pytest.mark.broker
@pytest.mark.parametrize("username, password", [("term-1", "wrong"), ("term-1", ""), ("term-9", "anything"),
                                                (HUB, "wrong"), (None, None)],
                         ids=["wrong-password", "empty-password", "unknown-user", "hub-wrong-password",
                              "anonymous"])
def test_bad_credentials_are_refused_not_authorised(park, username, password):
    session = Session(park, username, password=password)
    try:
        rc = session.connect()
    finally:
        session.close()
    assert rc == "Not authorized"    # MQTT 3.1.1 CONNACK 5 (paho reports it as reason 135)


@pytest.mark.broker
def test_plaintext_mqtt_to_the_tls_port_gets_no_connack(park):
    with socket.create_connection((park.broker.host, park.broker.port), timeout=WAIT_S) as sock:
        user, password = b"term-1", park.passwords["term-1"].encode()
        body = (b"\x00\x04MQTT\x04\xc2\x00\x1e" + len(user).to_bytes(2, "big") + user + len(user).to_bytes(2, "big")
                + user + len(password).to_bytes(2, "big") + password)
        sock.sendall(bytes([0x10, len(body)]) + body)
        answer = b""
        try:
            while chunk := sock.recv(64):
                answer += chunk
        except ConnectionResetError:
            pass
    assert not answer.startswith(b"\x20")    # closed or reset by the broker, never a CONNACK


@pytest.mark.broker
def test_paho_without_tls_cannot_connect(park):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="term-1")
    client.username_pw_set("term-1", park.passwords["term-1"])
    connacks = queue.Queue()
    client.on_connect = lambda c, u, f, rc, p: connacks.put(rc)
    client.connect(park.broker.host, park.broker.port)
    for _ in range(100):
        if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
            break
    assert connacks.empty()
    client.disconnect()


@pytest.mark.broker
def test_client_that_does_not_trust_the_park_ca_fails_the_handshake(park, tmp_path):
    stranger = pki.ensure_pki(tmp_path / "other")
    session = Session(park, "term-1", ca=stranger.ca_cert)
    with pytest.raises(ssl.SSLCertVerificationError):
        session.connect()
    session.close()


@pytest.mark.broker
def test_python_ssl_checks_the_broker_name(park):
    context = ssl.create_default_context(cafile=str(park.pki.ca_cert))
    for name in ("localhost", "127.0.0.1"):
        with socket.create_connection((park.broker.host, park.broker.port)) as raw:
            with context.wrap_socket(raw, server_hostname=name) as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
    with socket.create_connection((park.broker.host, park.broker.port)) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname="not-the-park.example")


@pytest.mark.broker
def test_new_terminal_credentials_take_effect_on_reload(tmp_path):
    park = Park(tmp_path)
    with park.broker:
        name, password = broker_auth.terminal_credentials(3)
        newcomer = Session(park, name, password=password)
        assert newcomer.connect() == "Not authorized"
        newcomer.close()
        park.passwords[name] = password
        broker_auth.write_password_file(tmp_path / "passwd", park.passwords)
        park.broker.reload()
        hub = Session(park, HUB)
        assert hub.connect() == 0     # SIGHUP is handled before this connection's CONNECT
        hub.subscribe("parkcard/+/up")
        newcomer = Session(park, name, password=password)
        assert newcomer.connect() == 0
        newcomer.publish(t(3, "up"), b"hello")
        assert hub.until(b"hello") == [(t(3, "up"), b"hello")]
        for session in (hub, newcomer):
            session.close()


# ---------------------------------------------------------------- MicroPython terminals


@pytest.mark.broker
@pytest.mark.micropython
def test_micropython_ssl_connects_with_the_park_ca_and_logs_in(park, micropython):
    script = MPY_SCRIPTS / "broker_tls_check.py"
    out = micropython(script, "raw", park.broker.host, park.broker.port, "term-1", park.passwords["term-1"],
                      park.ca_der, "localhost")
    lines = out.stdout.splitlines()
    assert lines[0] == "connack 32 0"       # CONNACK, return code 0 (MQTT 3.1.1 §3.2.2.3)
    print(lines[1])                          # the heap figures, for the report (pytest -s)
    refused = micropython(script, "raw", park.broker.host, park.broker.port, "term-1", "wrong", park.ca_der,
                          "localhost")
    assert refused.stdout.splitlines()[0] == "connack 32 5"


@pytest.mark.broker
@pytest.mark.micropython
def test_micropython_ssl_refuses_a_broker_under_another_name(park, micropython):
    out = micropython(MPY_SCRIPTS / "broker_tls_check.py", "raw", park.broker.host, park.broker.port, "term-1",
                      park.passwords["term-1"], park.ca_der, "not-the-park.example", check=False)
    assert out.returncode != 0 and "CN" in out.stderr


@pytest.mark.broker
@pytest.mark.micropython
def test_firmware_mqtt_client_over_tls_on_micropython(park, micropython, connect):
    hub = connect(HUB)
    hub.subscribe(t(2, "up"))
    hub.publish(t(2, "down"), b"welcome", retain=True)   # retained: no race with the terminal's SUBSCRIBE
    try:
        out = micropython(MPY_SCRIPTS / "broker_tls_check.py", "client", park.broker.host, park.broker.port,
                          "term-2", park.passwords["term-2"], park.ca_der, "127.0.0.1")
    finally:
        hub.publish(t(2, "down"), b"", retain=True)
    assert out.stdout.splitlines() == ["up acked", "down welcome"]
    assert hub.until(b"hello over tls") == [(t(2, "up"), b"hello over tls")]


@pytest.mark.broker
def test_hub_mqtt_link_logs_in_over_tls(park, connect):
    import asyncio

    from parkcard.transport.mqtt_link import MqttLink

    term = connect("term-1")
    term.subscribe(t(1, "down"))

    async def scenario():
        link = MqttLink(park.broker.host, park.broker.port, username=HUB, password=park.passwords[HUB],
                        tls_ca=str(park.pki.ca_cert))
        await link.start()
        try:
            await asyncio.wait_for(link.connected.wait(), WAIT_S)
            await asyncio.to_thread(term.publish, t(1, "up"), b"via link")
            batch = await asyncio.wait_for(link.get_batch(10), WAIT_S)
            link.release(len(batch))
            link.publish(t(1, "down"), b"from link")
            return [(m.topic, m.payload) for m in batch]
        finally:
            await link.stop()

    assert asyncio.run(scenario()) == [(t(1, "up"), b"via link")]
    assert term.until(b"from link") == [(t(1, "down"), b"from link")]
