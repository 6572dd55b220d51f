"""Opening the MQTT client's connection (terminal/mqtt.py's MQTTClient._connect): TCP, then TLS.

Loaded for each connection and forgotten after it: a terminal connects a few times a day.
"""

import asyncio
import sys

from terminal.compat import const, sleep_ms

_IPPROTO_TCP = const(6)  # same number on Linux and lwIP; MicroPython's socket lacks the names
_TCP_NODELAY = const(1)
_CONNECT_POLL_MS = const(10)


async def connect(client):
    """(reader, writer) to client's broker: TCP with TCP_NODELAY, then TLS when client.ssl is set."""
    if sys.implementation.name != "micropython":
        # CPython: its asyncio sets TCP_NODELAY on every TCP transport itself (since 3.7).
        return await asyncio.open_connection(client.host, client.port, ssl=client.ssl)
    # MicroPython: asyncio.open_connection would hand back the socket already wrapped in TLS,
    # and an SSL socket has no setsockopt, so the option is set here, on the TCP socket.
    import errno
    import select
    import socket
    family, kind, proto, _name, address = socket.getaddrinfo(client.host, client.port, 0, socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Without it Nagle holds each PUBLISH behind the last one's TCP ACK,
        # which the broker delays: about 25 messages/s instead of hundreds.
        sock.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
    except OSError:
        pass  # a port without the option still works, only slower
    sock.setblocking(False)
    try:
        sock.connect(address)
    except OSError as exc:
        if exc.errno != errno.EINPROGRESS:  # 115 on Linux, 119 on the ESP32's lwIP
            raise
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    while not poller.poll(0):  # connected; _open's timeout bounds this
        await sleep_ms(_CONNECT_POLL_MS)
    if client.ssl is not None:
        # The handshake runs on the stream's first writes and reads, as open_connection does it.
        sock = client.ssl.wrap_socket(sock, server_hostname=client.host, do_handshake_on_connect=False)
        sock.setblocking(False)
    stream = asyncio.StreamReader(sock)  # MicroPython's one Stream reads and writes
    return stream, stream
