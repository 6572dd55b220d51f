"""MQTT 3.1.1 CONNECT (§3.1) for terminal/mqtt.py, which encodes it once per client: borrowed
(compat.borrow), so its code leaves the heap after; the rest of the codec is terminal/mqtt_codec.py."""

from terminal.compat import const
from terminal.mqtt_codec import _as_bytes, _packet, _put_string

_CONNECT = const(1)


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
