"""MQTT 3.1.1 packet codec for the terminal (MicroPython and CPython): bytes in, packets out, no I/O.

terminal/mqtt.py frames every packet it reads with packet_size() ("need more
bytes" or the packet's size), oversize() and decode_packet() (the packet, or
MQTTError when malformed). The tests check these functions byte for byte
(tests/mpy/mqtt_codec_check.py, on CPython and MicroPython) and the client's
read path with the same bytes (tests/test_mqtt_client.py).
"""

import struct

from terminal.compat import const

# MQTT 3.1.1 §2.2.1 Control packet types (high nibble of the first byte).
# Public: the ones a broker sends (decode_packet's first item). The others are
# private consts, which mpy-cross folds into the code at no RAM cost.
CONNACK = const(2)
PUBLISH = const(3)
PUBACK = const(4)
_SUBSCRIBE = const(8)
SUBACK = const(9)
UNSUBACK = const(11)
PINGRESP = const(13)


PAYLOAD_MAX = 65536  # the default limit of a packet the client takes
_TOPIC_BYTES_MAX = const(256)
_REMAINING_LENGTH_MAX = const(268435455)  # §2.2.3: four bytes of 7 bits

_DUP = const(0x08)  # §3.3.1.1
_RETAIN = const(0x01)  # §3.3.1.3
_PID_MAX = const(65535)  # §2.3.1 Packet Identifier


class MQTTError(Exception):
    """The link to the broker failed or the broker broke the protocol."""


# ---------------------------------------------------------------- codec


def encode_remaining_length(length):
    """Return the §2.2.3 variable-length encoding of length."""
    if length < 0 or length > _REMAINING_LENGTH_MAX:
        raise ValueError("remaining length out of range")
    out = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_remaining_length(buf, offset=1, end=None):
    """Decode §2.2.3 Remaining Length at buf[offset:end].

    Return (length, offset after it), None when more bytes are needed, or
    raise MQTTError when a fourth byte still has its continuation bit set.
    """
    if end is None:
        end = len(buf)
    length = 0
    shift = 0
    for index in range(offset, min(end, offset + 4)):
        byte = buf[index]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length, index + 1
        shift += 7
    if end - offset >= 4:
        raise MQTTError("malformed remaining length")
    return None


def _put_string(buf, offset, data):
    """Write a §1.5.3 UTF-8 string (2-byte length prefix); return the new offset."""
    size = len(data)
    buf[offset] = size >> 8
    buf[offset + 1] = size & 0xFF
    buf[offset + 2 : offset + 2 + size] = data
    return offset + 2 + size


def _as_bytes(value, name, length=65535):
    if isinstance(value, str):
        value = value.encode()
    if len(value) > length:
        raise ValueError(name + " is too long")
    return value


def _packet(first_byte, length, size=None):
    """Allocate a packet of body length `length` with its fixed header filled in and room for the first
    size bytes of its body (all of it by default); return (buf, body offset)."""
    header = encode_remaining_length(length)
    buf = bytearray(1 + len(header) + (length if size is None else size))
    buf[0] = first_byte
    buf[1 : 1 + len(header)] = header
    return buf, 1 + len(header)


def encode_publish(topic, payload, qos=0, retain=False, dup=False, pid=0):
    """Return a PUBLISH packet (MQTT 3.1.1 §3.3) as (header, payload).

    The header is a bytearray (DUP and the packet id can be set later); the
    payload is the caller's, not copied: a QoS 1 message waits for its PUBACK
    holding one copy of its payload, not two.
    """
    topic = _as_bytes(topic, "topic")
    if not topic or b"+" in topic or b"#" in topic:
        raise ValueError("publish topic must be non-empty without wildcards")  # §3.3.2.1
    if qos not in (0, 1):
        raise ValueError("qos must be 0 or 1")
    if qos and not 0 < pid <= _PID_MAX:
        raise ValueError("QoS 1 needs a packet id")  # §2.3.1
    payload = _as_bytes(payload, "payload", _REMAINING_LENGTH_MAX)
    first = (PUBLISH << 4) | (qos << 1) | (_RETAIN if retain else 0) | (_DUP if dup and qos else 0)
    header_len = 2 + len(topic) + (2 if qos else 0)
    buf, pos = _packet(first, header_len + len(payload), header_len)
    pos = _put_string(buf, pos, topic)
    if qos:
        buf[pos] = pid >> 8
        buf[pos + 1] = pid & 0xFF
    return buf, payload


def encode_subscribe(pid, topic, qos=1):
    """Return a SUBSCRIBE packet for one topic filter (MQTT 3.1.1 §3.8)."""
    topic = _as_bytes(topic, "topic")
    if not topic:
        raise ValueError("empty topic filter")
    if qos not in (0, 1):
        raise ValueError("qos must be 0 or 1")
    buf, pos = _packet((_SUBSCRIBE << 4) | 0x02, 2 + 2 + len(topic) + 1)  # §3.8.1 flags 0010
    buf[pos] = pid >> 8
    buf[pos + 1] = pid & 0xFF
    pos = _put_string(buf, pos + 2, topic)
    buf[pos] = qos
    return bytes(buf)


def encode_puback(pid):
    """Return a PUBACK packet (MQTT 3.1.1 §3.4)."""
    return struct.pack("!BBH", PUBACK << 4, 2, pid)


def _pid_at(body, offset):
    if len(body) < offset + 2:
        raise MQTTError("packet too short for a packet id")
    pid = (body[offset] << 8) | body[offset + 1]
    if pid == 0:
        raise MQTTError("packet id 0")  # §2.3.1
    return pid


def decode_packet(first_byte, body, payload_max=PAYLOAD_MAX):
    """Decode one complete packet sent by a broker; raise MQTTError if malformed.

    Returns one of:
      (CONNACK, session_present, return_code)
      (PUBLISH, topic, payload, qos, retain, dup, pid)    pid is 0 for QoS 0
      (PUBACK, pid)   (UNSUBACK, pid)   (SUBACK, pid, return_codes)   (PINGRESP,)
    """
    kind = first_byte >> 4
    flags = first_byte & 0x0F
    size = len(body)
    if kind == PUBLISH:
        qos = (flags >> 1) & 0x03
        if qos > 1:
            raise MQTTError("PUBLISH QoS %d unsupported" % qos)  # we subscribe with QoS <= 1
        if qos == 0 and flags & _DUP:
            raise MQTTError("DUP set on QoS 0")  # §3.3.1.1
        if size < 2:
            raise MQTTError("PUBLISH too short")
        topic_len = (body[0] << 8) | body[1]
        pos = 2 + topic_len
        if topic_len == 0 or topic_len > _TOPIC_BYTES_MAX or pos > size:
            raise MQTTError("bad PUBLISH topic length")
        try:
            topic = str(body[2:pos], "utf-8")
        except (UnicodeError, ValueError):
            raise MQTTError("PUBLISH topic not UTF-8")  # §1.5.3
        if "+" in topic or "#" in topic:
            raise MQTTError("wildcard in PUBLISH topic")  # §3.3.2.1
        pid = 0
        if qos:
            pid = _pid_at(body, pos)
            pos += 2
        if size - pos > payload_max:
            raise MQTTError("payload over payload_max")
        # The payload is a slice of body, not a copy: from terminal/mqtt.py's read buffer, a memoryview.
        return (PUBLISH, topic, body[pos:], qos, bool(flags & _RETAIN), bool(flags & _DUP), pid)
    if flags:
        raise MQTTError("reserved flags set")  # §2.2.2
    if kind == PUBACK or kind == UNSUBACK:
        if size != 2:
            raise MQTTError("bad ack length")
        return (kind, _pid_at(body, 0))
    if kind == CONNACK:
        if size != 2 or body[0] & 0xFE:
            raise MQTTError("bad CONNACK")  # §3.2.2.1
        return (CONNACK, bool(body[0]), body[1])
    if kind == SUBACK:
        if size < 3:
            raise MQTTError("SUBACK too short")
        return (SUBACK, _pid_at(body, 0), bytes(body[2:]))
    if kind == PINGRESP:
        if size:
            raise MQTTError("bad PINGRESP")
        return (PINGRESP,)
    raise MQTTError("unexpected packet type %d" % kind)


def packet_size(buf, payload_max=PAYLOAD_MAX):
    """The size of the packet that starts buf: (total bytes, body offset), or None while the fixed
    header is incomplete ("need more bytes"); MQTTError for a malformed Remaining Length (§2.2.3).
    A packet larger than payload_max allows is returned too: the caller decides (oversize())."""
    if len(buf) < 2:
        return None
    header = decode_remaining_length(buf, 1)
    if header is None:
        return None
    length, start = header
    return start + length, start


def oversize(size, payload_max=PAYLOAD_MAX):
    """True when a packet of packet_size() `size` is more than payload_max allows."""
    return size[0] - size[1] > payload_max + _TOPIC_BYTES_MAX + 4

