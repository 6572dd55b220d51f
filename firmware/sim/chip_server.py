"""Serve a virtual MFRC522 and its field to a MicroPython process (CPython side of sim/spi_link.py)."""

import socket
import socketserver
import struct
import threading

from sim.mfrc522 import VirtualMFRC522
from sim.mifare import Field


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        server = self.server.owner
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        chip = server.chip
        while True:
            head = _recv_exact(sock, 3)
            if head is None:
                return
            op, length = struct.unpack(">BH", head)
            data = _recv_exact(sock, length) if op != ord("R") else _recv_exact(sock, 3)
            if data is None:
                return
            with server.lock:
                if op == ord("W"):
                    chip.spi.write(data)
                elif op == ord("C"):
                    chip.cs.value(data[0])
                elif op == ord("R"):
                    count = struct.unpack(">H", data[1:3])[0]
                    _reply(sock, chip.spi.read(count, data[0]))
                elif op == ord("X"):
                    buf = bytearray(len(data))
                    chip.spi.write_readinto(data, buf)
                    _reply(sock, bytes(buf))
                elif op == ord("K"):
                    _reply(sock, server.control(data.decode()).encode())
                else:
                    return


def _recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            return None
        out += chunk
    return out


def _reply(sock, data):
    sock.sendall(struct.pack(">H", len(data)) + data)


class ChipServer:
    """A virtual RC522 with a field and a numbered set of cards, served on a loopback port."""

    def __init__(self, cards=(), host="127.0.0.1"):
        self.field = Field()
        self.chip = VirtualMFRC522(self.field)
        self.cards = list(cards)
        self.lock = threading.Lock()
        self._server = socketserver.ThreadingTCPServer((host, 0), _Handler)
        self._server.daemon_threads = True
        self._server.owner = self
        self.host, self.port = self._server.server_address
        self._thread = None

    def control(self, command):
        """Field commands from the terminal side: add/remove/tear/remove_after/stats."""
        words = command.split()
        try:
            if words[0] == "stats":
                return "card_commands=%d spi_transactions=%d" % (self.chip.card_commands, self.chip.spi_transactions)
            card = self.cards[int(words[1])]
            if words[0] == "add":
                self.field.add(card)
            elif words[0] == "remove":
                self.field.remove(card)
            elif words[0] == "tear":
                self.field.tear_next_write(int(words[2]), card)
            elif words[0] == "remove_after":
                self.field.remove_after(int(words[2]), card)
            else:
                return "error: unknown command " + words[0]
        except (IndexError, ValueError) as exc:
            return "error: %s" % exc
        return "ok"

    def __enter__(self):
        self._thread = threading.Thread(target=self._server.serve_forever, name="chip-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
