"""The Authoriser on real MicroPython: the real driver talks to the virtual RC522 served by CPython.

usage: micropython -X heapsize=100k authorise_check.py CHIP_PORT TRANSPORT_KEY_HEX ROLE
The chip server holds card 0 (an admin card) and card 1 (a wallet card).
Prints key=value lines.
"""

import gc
import sys
from binascii import hexlify, unhexlify

gc.collect()

from protocol.config import Config
from protocol.frames import CMD_AUTH_CONFIRM, CMD_DEAUTHORISE
from sim.spi_link import ChipLink, LinkedPin, LinkedSpi
from terminal import authorise as au
from terminal.rc522 import RC522

port = int(sys.argv[1])
transport_key = unhexlify(sys.argv[2])
role = int(sys.argv[3])


class KeyStore:
    """NVS stand-in: bytes by name."""

    def __init__(self, items):
        self.items = dict(items)

    def get(self, name):
        return self.items.get(name)

    def set(self, name, value):
        self.items[name] = bytes(value)

    def delete(self, name):
        self.items.pop(name, None)


class Wallet:
    """What the Authoriser touches of terminal.wallet.Wallet."""

    park_keys = None
    config = None


link = ChipLink("127.0.0.1", port)
reader = RC522(LinkedSpi(link), LinkedPin(link))
reader.init()
keystore = KeyStore({"transport_key": transport_key})
wallet = Wallet()
wallet.config = Config(version=1, role=role)
sent = []
auth = au.Authoriser(reader, keystore, wallet, lambda no, uid: sent.append((no, uid)))

link.control("add 1")
print("wallet_card=%s" % auth.poll())
link.control("remove 1")
gc.collect()
heap_idle = gc.mem_alloc()
link.control("add 0")
print("admin_card=%s" % auth.poll())
heap_used = gc.mem_alloc() - heap_idle
link.control("remove 0")
print("state=%s sent_card_no=%d sent_uid=%s" % (auth.state, sent[0][0], hexlify(sent[0][1]).decode()))
auth.on_command(CMD_AUTH_CONFIRM, 0)
print("state=%s stored=%d master_b=%s" % (auth.state, len(keystore.get("park_keys")),
                                          wallet.park_keys.master_b is not None))
print("stored_hex=%s" % hexlify(keystore.get("park_keys")).decode())
auth.on_command(CMD_DEAUTHORISE, 0)
print("state=%s stored=%s wallet_keys=%s" % (auth.state, keystore.get("park_keys"), wallet.park_keys))
print("heap_admin_tap=%d" % heap_used)
gc.collect()
print("heap_free=%d" % gc.mem_free())
