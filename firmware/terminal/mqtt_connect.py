"""The start of a terminal/mqtt.py client: its tables allocated and its MQTT 3.1.1 CONNECT (§3.1) encoded,
once per client. Borrowed (compat.borrow), so its code leaves the heap after; the rest of the codec is
terminal/mqtt_codec.py."""

import asyncio

from terminal.compat import const
from terminal.mqtt_codec import PAYLOAD_MAX, _as_bytes, _packet, _put_string

_CONNECT = const(1)
_RETRY_DELAY_MS_MIN = const(500)
# Every packet that fits is read into one buffer taken at start, while the heap is whole: a downlink
# frame of 128 blacklist cards (terminal/sync.py) is 583 bytes with its MQTT header and topic.
_READ_BUF_BYTES = const(640)
_STAT_NAMES = const(("connects", "reconnects", "retransmits", "pub_acked", "inflight_full_waits",
               "pings", "keepalive_timeouts", "malformed", "connack_refused",
               "sub_refused", "subacks", "puback_unknown", "callback_errors", "refused",
               "memory_errors"))


def start(client, client_id, host, port, options):
    """Set up a new MQTTClient: MQTTClient(client_id, host, port, **options) runs this."""
    _start(client, client_id, host, port, **options)


def _start(client, client_id, host, port, username=None, password=None, keepalive_s=30, ssl=None, will_topic=None,
           will_payload=None, will_retain=True, will_qos=1, clean_session=False, inflight_max=8,
           retry_delay_ms_max=30000, ack_timeout_ms=5000, payload_max=PAYLOAD_MAX,
           retry_delay_ms_min=_RETRY_DELAY_MS_MIN):
    client._address = (host, port, ssl)
    client.keepalive_ms = keepalive_s * 1000
    client._retry_ms = (retry_delay_ms_min, retry_delay_ms_max)
    client.ack_timeout_ms = ack_timeout_ms
    client.payload_max = payload_max
    # (topic, payload, retain): on MicroPython the payload is a memoryview of the client's read buffer, valid
    # until on_message returns (the next packet is read into it): what is kept is copied (protocol.frames.decode
    # hands the body on as a view of it; terminal/sync.py copies it for a component's handler).
    client.on_message = None
    client.on_connect = None
    client.on_refused = None   # (topic, size): a packet too large for payload_max or the heap was dropped
    client.last_error = None
    client.stats = {}
    for name in _STAT_NAMES:
        client.stats[name] = 0
    # Encoded once: sent on every (re)connect. §3.1
    client._connect_packet = encode_connect(client_id, keepalive_s, clean_session, username, password,
                                            will_topic, will_payload, will_qos, will_retain)
    _tables(client, inflight_max)


def _tables(client, inflight_max):
    # Apart from _start: each function of a borrowed module needs one free block of its size at once.
    # In-flight QoS 1 table, allocated once: slot i is free when _slot_pid[i] == 0.
    client._slot_pid = [0] * inflight_max
    client._slot_packet = [None] * inflight_max
    client._slot_sent_gen = [0] * inflight_max  # connection generation it was last sent on
    client._slot_seq = [0] * inflight_max  # publish order, for §4.6 ordered retransmission
    client._slot_acked = [False] * inflight_max
    client._acked = asyncio.Event()  # pulsed on every PUBACK
    client._slot_freed = asyncio.Event()  # pulsed when a slot is freed
    client._subs = []  # [(topic, qos)], re-sent on every connect
    # The client's flags as bits (mqtt._RESENDING, mqtt._CLOSING) and its two one-holder locks (mqtt._WRITING:
    # packets never interleave on the wire; mqtt._SUBSCRIBING: one SUBSCRIBE waits for its SUBACK at a time),
    # with one Event pulsed on every release: asyncio.Lock's module would stay on the heap for them (about
    # 600 bytes on the unix port), and every attribute more grows the client's dict, one block of the heap.
    client._held = 0
    client._released = asyncio.Event()
    client._sub_pid = 0
    client._sub_codes = None
    client._sub_event = asyncio.Event()
    client._link_down = asyncio.Event()
    client._up = asyncio.Event()
    client._stop = asyncio.Event()
    client._reader = None
    client._writer = None
    client._gen = 0
    client._seq = 0
    client._pid = 0
    client.connected = False
    client._last_rx_ms = 0
    client._last_tx_ms = 0
    client._rbuf = memoryview(bytearray(_READ_BUF_BYTES))


def encode_connect(client_id, keepalive_s=30, clean_session=False, username=None, password=None,
                   will_topic=None, will_payload=None, will_qos=1, will_retain=True):
    """Return a CONNECT packet (MQTT 3.1.1 §3.1)."""
    if will_qos not in (0, 1):
        raise ValueError("will_qos must be 0 or 1")
    if keepalive_s < 0 or keepalive_s > 65535:
        raise ValueError("keepalive_s out of range")
    if password is not None and username is None:
        raise ValueError("password needs a username")  # §3.1.2.9
    fields = [_as_bytes(client_id, "client_id")]
    flags = 0x02 if clean_session else 0  # §3.1.2.4 Clean Session
    if will_topic is not None:  # §3.1.2.5 Will Flag
        fields.append(_as_bytes(will_topic, "will_topic"))
        fields.append(_as_bytes(will_payload or b"", "will_payload"))
        flags |= 0x04 | (will_qos << 3) | (0x20 if will_retain else 0)
    if username is not None:  # §3.1.2.8 User Name Flag
        fields.append(_as_bytes(username, "username"))
        flags |= 0x80
    if password is not None:  # §3.1.2.9 Password Flag
        fields.append(_as_bytes(password, "password"))
        flags |= 0x40
    body_len = 10  # §3.1.2: protocol name, level, flags, keep alive
    for field in fields:
        body_len += 2 + len(field)
    buf, pos = _packet(_CONNECT << 4, body_len)
    pos = _put_string(buf, pos, b"MQTT")  # §3.1.2.1 Protocol Name
    buf[pos] = 4  # §3.1.2.2 Protocol Level 4 = 3.1.1
    buf[pos + 1] = flags
    buf[pos + 2] = keepalive_s >> 8  # §3.1.2.10 Keep Alive
    buf[pos + 3] = keepalive_s & 0xFF
    pos += 4
    for field in fields:  # §3.1.3 payload order: id, will topic, will message, user, password
        pos = _put_string(buf, pos, field)
    return bytes(buf)
