"""A terminal's TLS link to the secure broker under MicroPython (driven by tests/test_broker_security.py).

Arguments: mode, broker host, port, username, password, CA certificate file (DER),
server hostname.
- mode `raw`: TLS handshake and a hand-built MQTT CONNECT (MQTT 3.1.1 §3.1);
  prints `connack <type> <return code>` and the heap the TLS context and
  connection keep on the MicroPython heap.
- mode `client`: the firmware's terminal.mqtt.MQTTClient over TLS: publishes on
  its up topic, waits for the (retained) message on its down topic; prints `up
  acked` and `down <payload>`.
MicroPython's ssl takes `cadata` as DER bytes only: this build refuses PEM
("invalid cert"), NUL-terminated or not; parkcard.security.pki.ParkPKI.ca_der() gives the DER.
"""

import sys
import gc

gc.collect()
_BASE = gc.mem_alloc()

import socket  # noqa: E402
import ssl  # noqa: E402

WAIT_MS = 20000


def context(ca_path):
    with open(ca_path, "rb") as f:
        ca_der = f.read()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=ca_der)
    return ctx


def field(data):
    """A length-prefixed string (MQTT 3.1.1 §1.5.3)."""
    return bytes([len(data) >> 8, len(data) & 0xFF]) + data


def raw(host, port, username, password, ca_path, server_hostname):
    gc.collect()
    before = gc.mem_alloc()
    ctx = context(ca_path)
    gc.collect()
    ctx_bytes = gc.mem_alloc() - before
    sock = socket.socket()
    sock.connect(socket.getaddrinfo(host, port)[0][-1])
    gc.collect()
    before_handshake = gc.mem_alloc()
    link = ctx.wrap_socket(sock, server_hostname=server_hostname)
    gc.collect()
    handshake_bytes = gc.mem_alloc() - before_handshake
    user = username.encode()
    # CONNECT: protocol "MQTT" level 4, flags username+password+clean session, keepalive 30 s.
    body = field(b"MQTT") + bytes([4, 0xC2, 0, 30]) + field(user) + field(user) + field(password.encode())
    link.write(bytes([0x10, len(body)]) + body)
    connack = link.read(4)
    print("connack", connack[0], connack[3])
    print("heap context", ctx_bytes, "connection", handshake_bytes, "module", before - _BASE)
    link.close()


def client(host, port, username, password, ca_path, server_hostname):
    import asyncio
    from time import ticks_diff, ticks_ms

    from terminal.mqtt import MQTTClient

    prefix = "parkcard/" + username + "/"
    received = []
    ready = []
    mq = MQTTClient(username, host, port, username=username, password=password, ssl=context(ca_path),
                    will_topic=prefix + "status", will_payload=b"offline", keepalive_s=10,
                    retry_delay_ms_min=50, retry_delay_ms_max=500)
    mq.on_message = lambda topic, payload, retained: received.append(payload)

    async def on_connect():
        ready.append(1)

    async def until(condition, what):
        start = ticks_ms()
        while not condition():
            if ticks_diff(ticks_ms(), start) > WAIT_MS:
                print("timeout", what, mq.last_error, mq.stats)
                raise SystemExit(1)
            await asyncio.sleep_ms(5)

    async def main():
        mq.on_connect = on_connect
        await mq.subscribe(prefix + "down")
        runner = asyncio.create_task(mq.run())
        await until(lambda: ready, "connect")
        await mq.publish(prefix + "up", b"hello over tls")
        print("up acked")
        await until(lambda: received, "down message")
        print("down", str(received[0], "utf-8"))
        await mq.disconnect()
        await runner

    # server_hostname is checked by the raw mode; the client verifies against host.
    asyncio.run(main())


MODES = {"raw": raw, "client": client}
MODES[sys.argv[1]](sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7])
