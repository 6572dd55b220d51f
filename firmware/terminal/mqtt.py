"""Asyncio MQTT 3.1.1 client for the terminal (MicroPython and CPython).

Design (after peterhinch/micropython-mqtt's mqtt_as, not its code):

- Nothing blocks the event loop: every socket wait is an asyncio stream wait,
  and every wait for the broker is bounded (CONNACK, SUBACK, keepalive).
- One recovery path: every link failure (socket error, EOF, malformed or
  oversize packet, keepalive silence, refused CONNACK) becomes MQTTError, ends
  the connection in `_serve`, and `run` reconnects after a capped, jittered
  exponential back-off.
- QoS 1 messages live in a fixed table of `inflight_max` slots until their
  PUBACK arrives; after a reconnect the unacknowledged ones are sent again,
  oldest first, with DUP set (MQTT 3.1.1 §4.4).
- Packets are framed and decoded by terminal/mqtt_codec.py, which does no I/O
  and is tested byte for byte: packet_size() says how many bytes a packet
  needs, oversize() whether to take it, decode_packet() reads it.
- On MicroPython every packet that fits is read into one buffer taken at start,
  and a PUBLISH's payload reaches on_message as a memoryview of it, valid until
  on_message returns: a frame costs the heap no copy on the way in.
- A packet too large for payload_max, or for the heap, is refused, not fatal:
  its bytes are read and dropped in small pieces, a QoS 1 PUBLISH is
  acknowledged (the sender's copy is the one that counts), and on_refused(topic,
  size) lets the application ask for it again in smaller pieces.
"""

import asyncio
import sys

from terminal.compat import borrow, const, sleep_ms, ticks_diff, ticks_ms, wait_ms
from terminal.mqtt_codec import (CONNACK, PINGRESP, PUBACK, PUBLISH, SUBACK,  # noqa: F401
                                 UNSUBACK, MQTTError, decode_packet, encode_puback,
                                 encode_publish, encode_subscribe, oversize, packet_size)

_PINGREQ_PACKET = const(b"\xc0\x00")  # §3.12
_DISCONNECT_PACKET = const(b"\xe0\x00")  # §3.14
_DUP = const(0x08)  # §3.3.1.1
_PID_MAX = const(65535)  # §2.3.1 Packet Identifier
_SUBS_MAX = const(16)
_SUBACK_FAILURE = const(0x80)  # §3.9.3
_IPPROTO_TCP = const(6)  # same number on Linux and lwIP; MicroPython's socket lacks the names
_TCP_NODELAY = const(1)
_CONNECT_POLL_MS = const(10)
_SKIP_BYTES = const(256)  # a refused packet is read and dropped in pieces this big
_WRITING = const(1)
_SUBSCRIBING = const(2)
_RESENDING = const(4)  # after a connect: publishers leave their messages to _serve's resend
_CLOSING = const(8)  # close() was called: run() ends, every waiter raises
_HEAP_WAIT_MS = const(50)  # how long the reader waits for heap before it reads a packet's first bytes again

from random import getrandbits


# ---------------------------------------------------------------- helpers

async def _read_exact(reader, size, into=None):
    """Read exactly size bytes; EOF -> MQTTError. On MicroPython they go into `into` (a memoryview) when it
    is long enough, else into a new buffer taken before anything is read, so a MemoryError leaves the stream
    where it was (the packet is then refused, _refuse); a memoryview of them is returned."""
    try:
        if hasattr(reader, "readinto"):  # MicroPython's Stream
            if into is None or len(into) < size:
                into = memoryview(bytearray(size))
            got = 0
            while got < size:
                n = await reader.readinto(into[got:size])
                if not n:
                    raise EOFError
                got += n
            return into[:size]
        return await reader.readexactly(size)
    except EOFError:  # CPython's IncompleteReadError is an EOFError too
        raise MQTTError("connection closed by broker")


# ---------------------------------------------------------------- client



class MQTTClient:
    """A long-lived MQTT 3.1.1 connection with QoS 1 publishing and a last will."""

    def __init__(self, client_id, host, port, **options):
        """Options: username, password, keepalive_s, ssl, will_topic, will_payload, will_retain, will_qos,
        clean_session, inflight_max, retry_delay_ms_min/_max, ack_timeout_ms, payload_max (mqtt_connect.start)."""
        # Set up once, its code borrowed with the CONNECT encoder: only the link's code stays on the heap.
        borrow("terminal.mqtt_connect", "start", self, client_id, host, port, options)

    # ------------------------------------------------------------ link

    async def run(self):
        """Connect, serve and reconnect until close(); raises only CancelledError."""
        attempt = 0
        while not self._held & _CLOSING:
            try:
                await wait_ms(self._open(), self.ack_timeout_ms)
                attempt = 0
                await self._serve()
            except asyncio.CancelledError:
                self._teardown()
                raise
            except Exception as exc:  # every failure takes the one reconnect path
                self.last_error = exc
                if isinstance(exc, MemoryError):
                    # No room for the TLS handshake or CONNECT's reply: counted (the status frame reports
                    # it once a link stands, SPEC.md §5.3) and tried again after the back-off like any failure.
                    self.stats["memory_errors"] += 1
            self._teardown()
            if self._held & _CLOSING:
                break
            self.stats["reconnects"] += 1
            # Capped exponential back-off with equal jitter: half fixed, half random.
            delay_ms_min, delay_ms_max = self._retry_ms
            delay_ms = min(delay_ms_max, delay_ms_min << min(attempt, 16))
            delay_ms = delay_ms // 2 + getrandbits(16) * (delay_ms // 2) // 65536
            attempt += 1
            try:
                await wait_ms(self._stop.wait(), delay_ms)
            except asyncio.TimeoutError:
                pass

    async def _connect(self):
        """(reader, writer) to the broker: TCP with TCP_NODELAY, then TLS when ssl is set."""
        host, port, ssl = self._address
        if sys.implementation.name != "micropython":
            # CPython: its asyncio sets TCP_NODELAY on every TCP transport itself (since 3.7).
            return await asyncio.open_connection(host, port, ssl=ssl)
        # MicroPython: asyncio.open_connection would hand back the socket already wrapped in TLS,
        # and an SSL socket has no setsockopt, so the option is set here, on the TCP socket.
        import errno
        import select
        import socket
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
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
        if ssl is not None:
            # The handshake runs on the stream's first writes and reads, as open_connection does it.
            sock = ssl.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
            sock.setblocking(False)
        stream = asyncio.StreamReader(sock)  # MicroPython's one Stream reads and writes
        return stream, stream

    async def _open(self):
        """Open the socket, send CONNECT, wait for CONNACK (§3.2)."""
        self._reader, self._writer = await self._connect()
        self._writer.write(self._connect_packet)
        await self._writer.drain()
        packet = await self._read_packet()
        if packet[0] != CONNACK:
            raise MQTTError("expected CONNACK")  # §3.2: first packet from the server
        if packet[2]:
            self.stats["connack_refused"] += 1
            raise MQTTError("CONNACK refused with code %d" % packet[2])  # §3.2.2.3

    async def _serve(self):
        """Run one established connection until it fails; always raises MQTTError."""
        if self._held & _CLOSING:
            raise MQTTError("client closed")
        self._gen += 1
        self._held |= _RESENDING  # publishers leave their messages to the resend below, in order
        self.connected = True
        self._link_down.clear()
        self._last_rx_ms = self._last_tx_ms = ticks_ms()
        self.stats["connects"] += 1
        self._up.set()
        reader_task = asyncio.create_task(self._read_loop())
        user_task = None
        try:
            for topic, qos in self._subs:
                await self._subscribe_now(topic, qos)  # a refusal is counted, not retried
            # §4.4: resend unacknowledged PUBLISH packets in their original order.
            while True:
                oldest = -1
                for index in range(len(self._slot_pid)):
                    if (self._slot_pid[index] and not self._slot_acked[index]
                            and self._slot_sent_gen[index] != self._gen
                            and (oldest < 0 or self._slot_seq[index] < self._slot_seq[oldest])):
                        oldest = index
                if oldest < 0:
                    self._held &= ~_RESENDING  # no await since the last scan: nothing is left behind
                    break
                await self._send_slot(oldest)
            if self.on_connect is not None:
                try:
                    result = self.on_connect()
                except Exception as exc:
                    result = None
                    self.stats["callback_errors"] += 1
                    self.last_error = exc
                if hasattr(result, "send"):  # a coroutine: run it beside the link
                    user_task = asyncio.create_task(result)
            # MQTT 3.1.1 §3.1.2.10 Keep Alive: PINGREQ when quiet, drop a silent broker.
            keepalive_ms = self.keepalive_ms
            while True:
                if keepalive_ms:
                    try:
                        await wait_ms(self._link_down.wait(), keepalive_ms // 4)
                    except asyncio.TimeoutError:
                        pass
                else:
                    await self._link_down.wait()
                if self._link_down.is_set():
                    raise MQTTError("the link is down")
                now = ticks_ms()
                if ticks_diff(now, self._last_rx_ms) > keepalive_ms + keepalive_ms // 2:
                    self.stats["keepalive_timeouts"] += 1
                    raise MQTTError("keepalive: broker silent")
                if self._held & _WRITING:
                    continue  # a write is under way (or stuck: then the silence check above ends it)
                if (ticks_diff(now, self._last_tx_ms) >= keepalive_ms // 2
                        or ticks_diff(now, self._last_rx_ms) >= keepalive_ms // 2):
                    self.stats["pings"] += 1
                    await self._send(_PINGREQ_PACKET)
        finally:
            reader_task.cancel()
            if user_task is not None:
                user_task.cancel()

    def _teardown(self):
        self.connected = False
        self._up.clear()
        self._link_down.set()
        writer = self._writer
        self._reader = self._writer = None
        if writer is not None:
            try:
                writer.close()
            except Exception:  # closing a dead socket may fail; it is gone either way
                pass
        self._sub_event.set()  # wake a subscribe() waiting on this link

    def _fail(self, exc):
        if not self._link_down.is_set():
            self.last_error = exc
            self._link_down.set()

    async def _send(self, data, payload=b""):
        """Write one whole packet (a PUBLISH as header and payload); a failure marks the link down and raises MQTTError."""
        await self._hold(_WRITING)
        try:
            writer = self._writer
            if writer is None or not self.connected:
                raise MQTTError("not connected")
            try:
                writer.write(data)
                if payload:
                    writer.write(payload)
                await writer.drain()
            except Exception as exc:
                err = MQTTError("send failed: %r" % (exc,))
                self._fail(err)
                raise err
        finally:
            self._release(_WRITING)
        self._last_tx_ms = ticks_ms()

    async def _hold(self, lock):
        """Take lock (_WRITING or _SUBSCRIBING) once its holder released it."""
        while self._held & lock:
            await self._released.wait()
        self._held |= lock

    def _release(self, lock):
        self._held &= ~lock
        self._released.set()  # wakes every task waiting now; the first to run takes the lock
        self._released.clear()

    async def _read_packet(self):
        """Read one packet, framed by the codec (§2.2): fixed header, then the body; None when refused."""
        reader = self._reader
        rbuf = self._rbuf
        while True:
            try:
                head = await _read_exact(reader, 2, rbuf)
                break
            except MemoryError:
                # No room for the next packet's first bytes, and nothing read (_read_exact takes its buffer
                # first): the stream and the link stand. Counted (the status frame reports it) and read again
                # once the tasks that hold the heap moved on, never a reconnect for it.
                self.stats["memory_errors"] += 1
                await sleep_ms(_HEAP_WAIT_MS)
        while True:
            try:
                size = packet_size(head)
            except MQTTError:
                self.stats["malformed"] += 1
                raise
            if size is not None:
                break
            # More Remaining Length bytes follow (§2.2.3), at most five header bytes in all.
            if hasattr(reader, "readinto"):  # MicroPython: the header stays where it is, in the read buffer
                await _read_exact(reader, 1, rbuf[len(head):])
                head = rbuf[:len(head) + 1]
            else:
                head += await _read_exact(reader, 1)
        first = head[0]
        length = size[0] - size[1]
        if oversize(size, self.payload_max):
            return await self._refuse(first, length)
        try:
            body = await _read_exact(reader, length, rbuf[size[1]:]) if length else b""
        except MemoryError:
            # Nothing consumed yet (_read_exact takes the buffer before it reads): drop it in pieces.
            self.stats["memory_errors"] += 1
            return await self._refuse(first, length)
        try:
            return decode_packet(first, body, self.payload_max)
        except MQTTError:
            self.stats["malformed"] += 1
            raise
        except MemoryError:
            # Read whole, but no room for its payload's copy: refused like a packet too large to read
            # (its topic unknown: "" to on_refused).
            self.stats["memory_errors"] += 1
            self.stats["refused"] += 1
            pid = 0
            if first >> 4 == PUBLISH and first & 0x06 and len(body) >= 2:
                at = 2 + ((body[0] << 8) | body[1])
                if at + 2 <= len(body):
                    pid = (body[at] << 8) | body[at + 1]
            body = None
            return await self._refused(pid, "", length)

    async def _refuse(self, first_byte, length):
        """Read and drop a packet this terminal cannot hold; acknowledge a QoS 1 PUBLISH; tell on_refused."""
        self.stats["refused"] += 1
        reader = self._reader
        rbuf = self._rbuf  # the packet's header is read: the buffer is free for its pieces, no heap needed
        size = length
        topic = ""
        pid = 0
        if first_byte >> 4 == PUBLISH and length >= 2:
            prefix = await _read_exact(reader, 2, rbuf)
            topic_len = (prefix[0] << 8) | prefix[1]
            length -= 2
            if topic_len <= length and topic_len <= _SKIP_BYTES:
                topic = str(await _read_exact(reader, topic_len, rbuf), "utf-8")
                length -= topic_len
                if first_byte & 0x06 and length >= 2:  # QoS 1: the packet id follows the topic (§3.3.2.2)
                    ident = await _read_exact(reader, 2, rbuf)
                    pid = (ident[0] << 8) | ident[1]
                    length -= 2
        while length:
            length -= len(await _read_exact(reader, min(length, _SKIP_BYTES), rbuf))
        return await self._refused(pid, topic, size)

    async def _refused(self, pid, topic, size):
        """A PUBLISH dropped: acknowledge it (QoS 1) and tell on_refused."""
        if pid:
            await self._send(encode_puback(pid))  # §4.3.2: taken (and dropped); the sender sends it again smaller
        if self.on_refused is not None:
            try:
                self.on_refused(topic, size)
            except Exception as exc:  # the callback's bug must not kill the link
                self.stats["callback_errors"] += 1
                self.last_error = exc
        return None

    async def _read_loop(self):
        try:
            while True:
                packet = await self._read_packet()
                self._last_rx_ms = ticks_ms()
                if packet is None:
                    continue
                kind = packet[0]
                if kind == PUBLISH:
                    _, topic, payload, qos, retain, _, pid = packet
                    packet = None  # not held while the next one is read: a frame's heap is free again
                    if self.on_message is not None:
                        try:
                            self.on_message(topic, payload, retain)
                        except Exception as exc:  # the callback's bug must not kill the link
                            self.stats["callback_errors"] += 1
                            self.last_error = exc
                    topic = payload = None
                    if qos:
                        await self._send(encode_puback(pid))  # §4.3.2: PUBACK after taking ownership
                elif kind == PUBACK:
                    slot = self._find_slot(packet[1])
                    if slot < 0:
                        self.stats["puback_unknown"] += 1
                    else:
                        self._slot_acked[slot] = True
                        self.stats["pub_acked"] += 1
                        self._acked.set()  # wakes every publisher waiting now
                        self._acked.clear()
                elif kind == SUBACK:
                    if packet[1] == self._sub_pid:
                        self._sub_codes = packet[2]
                        self._sub_event.set()
                elif kind == CONNACK:
                    raise MQTTError("second CONNACK")  # §3.2
                # PINGRESP and UNSUBACK: receiving them already refreshed _last_rx_ms.
                packet = None
        except Exception as exc:
            self._fail(exc if isinstance(exc, MQTTError) else MQTTError("read failed: %r" % (exc,)))

    # ------------------------------------------------------------ QoS 1 table

    def _find_slot(self, pid):
        slots = self._slot_pid
        for index in range(len(slots)):
            if slots[index] == pid:
                return index
        return -1

    def _next_pid(self):
        while True:
            self._pid = self._pid % _PID_MAX + 1
            if self._pid != self._sub_pid and self._find_slot(self._pid) < 0:
                return self._pid

    async def _send_slot(self, slot):
        """Send slot's PUBLISH on this connection; DUP if it went out before (§3.3.1.1)."""
        header, payload = self._slot_packet[slot]
        if self._slot_sent_gen[slot]:
            header[0] |= _DUP
            self.stats["retransmits"] += 1
        self._slot_sent_gen[slot] = self._gen
        await self._send(header, payload)

    # ------------------------------------------------------------ public API

    async def publish(self, topic, payload, qos=1, retain=False, timeout_ms=None):
        """Publish; for QoS 1 return once PUBACK arrives, across reconnects.

        timeout_ms None waits as long as it takes; a number raises MQTTError
        when it expires (the message is then dropped from the in-flight table).
        """
        if isinstance(payload, str):
            payload = payload.encode()
        if len(payload) > self.payload_max:
            raise ValueError("payload over payload_max")
        if timeout_ms is None:
            return await self._publish(topic, payload, qos, retain)
        try:
            return await wait_ms(self._publish(topic, payload, qos, retain), timeout_ms)
        except asyncio.TimeoutError:
            raise MQTTError("publish not acknowledged within %d ms" % timeout_ms)

    async def _publish(self, topic, payload, qos, retain):
        if qos == 0:
            header, payload = encode_publish(topic, payload, 0, retain)
            while True:
                while not self.connected:
                    if self._held & _CLOSING:
                        raise MQTTError("client closed")
                    await self._up.wait()
                try:
                    return await self._send(header, payload)
                except MQTTError:
                    pass  # link lost: wait for the next one
        packet = encode_publish(topic, payload, 1, retain, False, 1)
        while True:
            if self._held & _CLOSING:
                raise MQTTError("client closed")
            slot = self._find_slot(0)
            if slot >= 0:
                self._slot_pid[slot] = -1  # reserved until the packet id is set
                break
            self.stats["inflight_full_waits"] += 1
            await self._slot_freed.wait()
        pid = self._next_pid()
        header = packet[0]
        header[-2] = pid >> 8  # the packet id ends the header
        header[-1] = pid & 0xFF
        self._slot_pid[slot] = pid
        self._slot_packet[slot] = packet
        self._slot_sent_gen[slot] = 0
        self._seq += 1
        self._slot_seq[slot] = self._seq
        try:
            if self.connected and not self._held & _RESENDING:
                try:
                    await self._send_slot(slot)
                except MQTTError:
                    pass  # stays in the table; _serve sends it again on the next connection
            while not self._slot_acked[slot]:
                if self._held & _CLOSING:
                    raise MQTTError("client closed")
                await self._acked.wait()
        finally:
            if self._slot_pid[slot] == pid:  # the slot is free again
                self._slot_pid[slot] = 0
                self._slot_packet[slot] = None
                self._slot_acked[slot] = False
                self._slot_freed.set()  # wakes every publisher waiting for a slot now
                self._slot_freed.clear()

    async def subscribe(self, topic, qos=1):
        """Subscribe now if connected, and again after every reconnect."""
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        for index in range(len(self._subs)):
            if self._subs[index][0] == topic:
                if self._subs[index][1] == qos and self.connected:
                    return  # _serve subscribes every stored topic on each connection: it has or will
                self._subs[index] = (topic, qos)
                break
        else:
            if len(self._subs) >= _SUBS_MAX:
                raise ValueError("more than %d subscriptions" % _SUBS_MAX)
            self._subs.append((topic, qos))
        if self.connected:
            try:
                granted = await self._subscribe_now(topic, qos)
            except MQTTError:
                return  # link lost: remembered, sent again on the next connection
            if not granted:
                raise MQTTError("subscription refused: " + topic)

    async def _subscribe_now(self, topic, qos):
        """Send SUBSCRIBE and wait for SUBACK; False if refused, MQTTError if the link fails."""
        await self._hold(_SUBSCRIBING)
        try:
            self._sub_pid = 0
            self._sub_pid = self._next_pid()
            self._sub_codes = None
            self._sub_event.clear()
            await self._send(encode_subscribe(self._sub_pid, topic, qos))
            try:
                await wait_ms(self._sub_event.wait(), self.ack_timeout_ms)
            except asyncio.TimeoutError:
                self._fail(MQTTError("SUBACK not in time"))
            codes = self._sub_codes
            self._sub_pid = 0
            if codes is None:
                raise MQTTError("no SUBACK for " + topic)
            if codes[0] == _SUBACK_FAILURE:  # §3.9.3 Failure
                self.stats["sub_refused"] += 1
                return False
            # Subscribed from here, not from CONNACK (§3.8.4): what tests wait for before publishing to us.
            self.stats["subacks"] += 1
            return True
        finally:
            self._release(_SUBSCRIBING)

    async def disconnect(self):
        """Send DISCONNECT (§3.14: the broker discards the will) and stop."""
        if self.connected:
            try:
                await wait_ms(self._send(_DISCONNECT_PACKET), self.ack_timeout_ms)
            except (MQTTError, asyncio.TimeoutError):
                pass
        self.close()

    def close(self):
        """Drop the link without DISCONNECT (the broker publishes the will) and stop run()."""
        self._held |= _CLOSING
        self._stop.set()
        self._teardown()
        self._up.set()  # wake waiters so they see _CLOSING
        self._slot_freed.set()
        self._slot_freed.clear()
        self._acked.set()
        self._acked.clear()
