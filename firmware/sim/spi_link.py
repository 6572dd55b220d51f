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


class LinkError(OSError):
    """The chip server went away or answered out of turn."""


class ChipLink:
    """One socket to the chip server."""

    def __init__(self, host, port):
        self.sock = socket.socket()
        self.sock.connect(socket.getaddrinfo(host, port)[0][-1])
        # Many tiny requests: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms each.
        self.sock.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
        self._head = bytearray(3)

    def send(self, op, data):
        """Send one request."""
        self.sock.send(struct.pack(">BH", op, len(data)) + bytes(data))

    def _recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise LinkError("chip server closed the link")
            out += chunk
        return out

    def answer(self):
        """Read one answer."""
        n = struct.unpack(">H", self._recv_exact(2))[0]
        return self._recv_exact(n)

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

    def write(self, buf):
        """Clock out buf."""
        self.link.send(ord("W"), buf)

    def readinto(self, buf, write=0x00):
        """Clock in len(buf) bytes while sending `write`."""
        self.link.send(ord("R"), bytes((write,)) + struct.pack(">H", len(buf)))
        buf[:] = self.link.answer()

    def read(self, nbytes, write=0x00):
        """Clock in nbytes bytes."""
        buf = bytearray(nbytes)
        self.readinto(buf, write)
        return bytes(buf)

    def write_readinto(self, write_buf, read_buf):
        """Full-duplex transfer."""
        self.link.send(ord("X"), write_buf)
        read_buf[:] = self.link.answer()


class LinkedPin:
    """The chip-select pin of the remote chip: callable and .value() like machine.Pin."""

    def __init__(self, link):
        self.link = link
        self._level = 1

    def value(self, v=None):
        """Read or set the level."""
        if v is None:
            return self._level
        self._level = 1 if v else 0
        self.link.send(ord("C"), bytes((self._level,)))
        return None

    __call__ = value
