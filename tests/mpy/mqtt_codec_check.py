"""MQTT 3.1.1 codec vectors for terminal/mqtt_codec.py and terminal/mqtt_connect.py (which
terminal/mqtt.py frames with), checked on MicroPython and CPython.

pytest imports VECTORS and DECODE_VECTORS and checks each on CPython, through parse_packet here and
through the client's own read path (tests/test_mqtt_client.py); run as a script (MicroPython;
argument: a directory holding terminal/mqtt_codec.mpy) it checks them all and prints
"codec ok <count>".
"""

import sys
from binascii import unhexlify

if __name__ == "__main__" and len(sys.argv) > 1:
    sys.path.insert(0, sys.argv[1])  # where the compiled terminal/mqtt_codec.mpy lives

from terminal import mqtt_codec as mqtt
from terminal.mqtt_connect import encode_connect

# (name, encoder, args, expected bytes as hex)
VECTORS = (
    ("connect_plain", encode_connect, ("t1", 30), "100e00044d5154540400001e00027431"),
    ("connect_will_user_password", encode_connect,
     ("t1", 60, True, "u", "p", "s", b"x", 1, True),
     "101a00044d51545404ee003c00027431000173000178000175000170"),
    ("connect_will_qos0_no_retain", encode_connect,
     ("t1", 0, False, None, None, "s", b"", 0, False), "101300044d5154540404000000027431000173" + "0000"),
    ("publish_qos0", mqtt.encode_publish, ("a/b", b"hi"), "30070003612f626869"),
    ("publish_qos0_dup_ignored", mqtt.encode_publish, ("a/b", b"hi", 0, False, True), "30070003612f626869"),
    ("publish_qos1_retain", mqtt.encode_publish, ("a/b", b"hi", 1, True, False, 10), "33090003612f62000a6869"),
    ("publish_qos1_dup", mqtt.encode_publish, ("a/b", b"hi", 1, False, True, 10), "3a090003612f62000a6869"),
    ("publish_empty_payload", mqtt.encode_publish, ("a", b""), "3003000161"),
    ("subscribe", mqtt.encode_subscribe, (1, "a/#", 1), "820800010003612f2301"),
    ("puback", mqtt.encode_puback, (258,), "40020102"),
    ("remaining_length_0", mqtt.encode_remaining_length, (0,), "00"),
    ("remaining_length_127", mqtt.encode_remaining_length, (127,), "7f"),
    ("remaining_length_128", mqtt.encode_remaining_length, (128,), "8001"),
    ("remaining_length_16383", mqtt.encode_remaining_length, (16383,), "ff7f"),
    ("remaining_length_16384", mqtt.encode_remaining_length, (16384,), "808001"),
    ("remaining_length_2097151", mqtt.encode_remaining_length, (2097151,), "ffff7f"),
    ("remaining_length_2097152", mqtt.encode_remaining_length, (2097152,), "80808001"),
    ("remaining_length_max", mqtt.encode_remaining_length, (268435455,), "ffffff7f"),
)

NEED_MORE = "need more"
MALFORMED = "malformed"
OVERSIZE = "oversize"  # the client reads such a packet and drops it (terminal/mqtt.py _refuse)

# (name, bytes as hex, expected: (consumed, packet) | NEED_MORE | MALFORMED | OVERSIZE)
DECODE_VECTORS = (
    ("connack_accepted", "20020000", (4, (mqtt.CONNACK, False, 0))),
    ("connack_session_refused", "20020105", (4, (mqtt.CONNACK, True, 5))),
    ("publish_qos0", "30070003612f626869", (9, (mqtt.PUBLISH, "a/b", b"hi", 0, False, False, 0))),
    ("publish_qos1_retain_dup", "3b090003612f62000a6869" + "d000",
     (11, (mqtt.PUBLISH, "a/b", b"hi", 1, True, True, 10))),
    ("publish_empty_payload", "3003000161", (5, (mqtt.PUBLISH, "a", b"", 0, False, False, 0))),
    ("puback", "40020102", (4, (mqtt.PUBACK, 258))),
    ("suback", "9003000101", (5, (mqtt.SUBACK, 1, b"\x01"))),
    ("suback_failure", "9003000180", (5, (mqtt.SUBACK, 1, b"\x80"))),
    ("unsuback", "b0020007", (4, (mqtt.UNSUBACK, 7))),
    ("pingresp", "d000", (2, (mqtt.PINGRESP,))),
    ("empty", "", NEED_MORE),
    ("first_byte_only", "30", NEED_MORE),
    ("length_continues", "3080", NEED_MORE),
    ("body_short", "300700", NEED_MORE),
    ("length_128_no_body", "308001", NEED_MORE),
    ("length_five_bytes", "30ffffffff01", MALFORMED),
    ("puback_reserved_flags", "41020001", MALFORMED),
    ("puback_long", "4003000100", MALFORMED),
    ("puback_pid_zero", "40020000", MALFORMED),
    ("publish_qos3", "3603000161", MALFORMED),
    ("publish_qos2_unsupported", "3405000161000a", MALFORMED),
    ("publish_qos0_dup", "3803000161", MALFORMED),
    ("publish_topic_past_end", "300400036162", MALFORMED),
    ("publish_topic_empty", "30020000", MALFORMED),
    ("publish_topic_wildcard", "30070003612b626869", MALFORMED),
    ("publish_topic_not_utf8", "30040002fffe", MALFORMED),
    ("publish_qos1_pid_zero", "320500016100" + "00", MALFORMED),
    ("publish_qos1_no_pid", "3203000161", MALFORMED),
    ("connect_from_broker", "1000", MALFORMED),
    ("pubrec_unsupported", "50020001", MALFORMED),
    ("connack_long", "2003000000", MALFORMED),
    ("connack_reserved_bits", "20020200", MALFORMED),
    ("pingresp_with_body", "d00100", MALFORMED),
    ("suback_no_codes", "90020001", MALFORMED),
    ("oversize_before_body", "30800a", OVERSIZE),  # 1280 bytes > payload_max 64 + topic: known from the header
    ("oversize_publish", "30ca02000161" + "78" * 327, OVERSIZE),  # a whole one: 330 bytes, topic "a"
)

DECODE_PAYLOAD_MAX = 64


def encode_result(vector):
    _, encoder, args, _ = vector
    packet = encoder(*args)
    return b"".join(packet) if isinstance(packet, tuple) else bytes(packet)  # a PUBLISH is (header, payload)


def parse_packet(buf, payload_max=mqtt.PAYLOAD_MAX):
    """The first packet in buf as terminal/mqtt.py frames it, with the codec functions it calls:
    (bytes consumed, packet), NEED_MORE, or OVERSIZE; MQTTError when malformed."""
    size = mqtt.packet_size(buf)
    if size is None:
        return NEED_MORE
    if mqtt.oversize(size, payload_max):
        return OVERSIZE
    total, start = size
    if len(buf) < total:
        return NEED_MORE
    return total, mqtt.decode_packet(buf[0], buf[start:total], payload_max)


def decode_result(vector):
    """Return what parse_packet makes of the vector: a tuple, NEED_MORE, OVERSIZE or MALFORMED."""
    try:
        return parse_packet(unhexlify(vector[1]), DECODE_PAYLOAD_MAX)
    except mqtt.MQTTError:
        return MALFORMED


def main():
    failures = 0
    for vector in VECTORS:
        if encode_result(vector) != unhexlify(vector[3]):
            failures += 1
            print("FAIL", vector[0])
    for vector in DECODE_VECTORS:
        if decode_result(vector) != vector[2]:
            failures += 1
            print("FAIL", vector[0], decode_result(vector))
    if failures:
        print("codec failures", failures)
    else:
        print("codec ok", len(VECTORS) + len(DECODE_VECTORS))


if __name__ == "__main__":
    main()
