"""The virtual RC522 in another process, reached over a loopback socket.

On an ESP32 the reader chip is not in the application's RAM; on the host the
emulator (sim/mfrc522.py) is large. To keep the MicroPython heap budget honest,
the emulator runs in a CPython process (sim/chip_server.py) and MicroPython
talks to it through `LinkedSpi` and `LinkedPin`, which behave like machine.SPI
and machine.Pin. Runs on MicroPython and CPython.

Wire format: request = op (1 byte) + length (2 bytes, big-endian) + data;
ops W (write), C (chip select level), R (readinto: data = [fill byte], length =
count), X (write_readinto), K (control command, text). R, X and K are answered
with length (2) + data.
"""

import socket
import struct


_IPPROTO_TCP = 6   # numeric: MicroPython's socket module lacks these names
_TCP_NODELAY = 1
_REPLY_MAX = 256


class LinkError(OSError):
    """The chip server went away or answered out of turn."""


class ChipLink:
    """One socket to the chip server."""

    def __init__(self, host, port):
        self.sock = socket.socket()
        self.sock.connect(socket.getaddrinfo(host, port)[0][-1])
        # Many tiny requests: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms each.
        self.sock.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
        # Buffers made once: the link's own garbage must not blur the firmware's heap figures.
        self._head = bytearray(3)
        self._len = bytearray(2)
        self._reply = bytearray(_REPLY_MAX)
        self._len_mv = memoryview(self._len)
        self._reply_mv = memoryview(self._reply)

    def send(self, op, data):
        """Send one request."""
        struct.pack_into(">BH", self._head, 0, op, len(data))
        self.sock.send(self._head)
        if data:
            self.sock.send(data)

    def _recv_into(self, mv):
        need = len(mv)
        got = 0
        while got < need:
            part = mv[got:] if got else mv
            n = self.sock.readinto(part) if hasattr(self.sock, "readinto") else self.sock.recv_into(part)
            if not n:
                raise LinkError("chip server closed the link")
            got += n

    def answer_into(self):
        """Read one answer into the link's buffer; return a memoryview of it."""
        self._recv_into(self._len_mv)
        n = (self._len[0] << 8) | self._len[1]
        if n > _REPLY_MAX:
            raise LinkError("answer of %d bytes" % n)
        mv = self._reply_mv[:n]
        self._recv_into(mv)
        return mv

    def answer(self):
        """Read one answer as bytes."""
        return bytes(self.answer_into())

    def control(self, command):
        """Run a field command on the server, e.g. 'add 0', 'remove 0', 'tear 0 8'; returns its text."""
        self.send(ord("K"), command.encode())
        reply = self.answer().decode()
        if reply.startswith("error"):
            raise LinkError(reply)
        return reply

    def close(self):
        """Close the socket."""
        self.sock.close()


class LinkedSpi:
    """machine.SPI-compatible object whose bytes go to the remote chip."""

    def __init__(self, link):
        self.link = link
        self._req = bytearray(3)

    def write(self, buf):
        """Clock out buf."""
        self.link.send(ord("W"), buf)

    def readinto(self, buf, write=0x00):
        """Clock in len(buf) bytes while sending `write`."""
        struct.pack_into(">BH", self._req, 0, write, len(buf))
        self.link.send(ord("R"), self._req)
        buf[:] = self.link.answer_into()

    def read(self, nbytes, write=0x00):
        """Clock in nbytes bytes."""
        buf = bytearray(nbytes)
        self.readinto(buf, write)
        return bytes(buf)

    def write_readinto(self, write_buf, read_buf):
        """Full-duplex transfer."""
        self.link.send(ord("X"), write_buf)
        read_buf[:] = self.link.answer_into()


class LinkedPin:
    """The chip-select pin of the remote chip: callable and .value() like machine.Pin."""

    def __init__(self, link):
        self.link = link
        self._level = 1
        self._levels = (b"\x00", b"\x01")

    def value(self, v=None):
        """Read or set the level."""
        if v is None:
            return self._level
        self._level = 1 if v else 0
        self.link.send(ord("C"), self._levels[self._level])
        return None

    __call__ = value
