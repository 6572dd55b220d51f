"""The admin system card: sealing on both interpreters, tampering, and the Authoriser on the virtual reader."""

import hashlib
import hmac

import pytest

from conftest import REPO, run_cpython
from protocol import admin_card, card, card_issue, frames
from protocol.config import ROLE_DESK, ROLE_POS, ROLE_RIDE, Config
from protocol.errors import BadMac, Malformed
from protocol.record import record_mac_for
from sim.admin import admin_system_card
from sim.board import FileKeyStore
from sim.cards import issued_card
from sim.chip_server import ChipServer
from sim.mfrc522 import VirtualMFRC522
from sim.mifare import Field, MifareClassic1K
from terminal import authorise as au
from terminal import wallet as w
from terminal.blacklist import Blacklist
from terminal.journal import Journal
from terminal.rc522 import RC522

VECTORS = REPO / "protocol" / "vectors" / "admin_card.json"
CHECK = REPO / "tests" / "mpy" / "admin_card_check.py"
PARK = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32)
TRANSPORT = bytes(range(0xA0, 0xC0))
NONCE = bytes(range(1, 11))
UID4 = bytes.fromhex("a1b2c3d4")
UID7 = bytes.fromhex("04a1b2c3d4e5f6")
ADMIN_NO = 900001
NOW = 1795600000
TODAY = card.day_of(NOW)


# -- the seal on both interpreters --------------------------------------------------------------

def test_vectors_on_cpython():
    proc = run_cpython(CHECK, VECTORS)
    assert proc.stdout.startswith("admin card vectors ok")


@pytest.mark.micropython
def test_vectors_on_micropython_within_the_heap(micropython):
    proc = micropython(CHECK, VECTORS)      # -X heapsize=100k, compiled modules
    cpython = run_cpython(CHECK, VECTORS)
    assert proc.stdout.startswith("admin card vectors ok")
    assert proc.stdout == cpython.stdout    # the same checks passed on both


def _kdf(master, label, *context):
    msg = b"ParkCard-v1|" + label + b"".join(bytes((len(c),)) + c for c in context)
    return hmac.new(master, msg, hashlib.sha256).digest()


@pytest.mark.parametrize("desk", [False, True])
def test_seal_follows_the_spec_text(desk):
    """An independent reading of SPEC.md §6.3-6.4 with the standard library opens the blob."""
    blocks = admin_card.seal(TRANSPORT, PARK, ADMIN_NO, UID7, NONCE, desk=desk)
    order = (16, 17, 18, 20, 21, 22, 24, 25) if desk else (8, 9, 10, 12, 13, 14)
    sealed = b"".join(blocks[b] for b in order)
    header, ciphertext, tag = sealed[:16], sealed[16:-16], sealed[-16:]
    kind = 2 if desk else 1
    assert header == bytes((1, kind)) + ADMIN_NO.to_bytes(4, "big") + NONCE
    mac_key = _kdf(TRANSPORT, b"AMAC", bytes((kind,)))
    assert hmac.new(mac_key, b"ADMIN" + header + bytes((7,)) + UID7 + ciphertext, hashlib.sha256).digest()[:16] == tag
    enc_key = _kdf(TRANSPORT, b"AENC", bytes((kind,)))
    stream = b"".join(hmac.new(enc_key, NONCE + i.to_bytes(4, "big"), hashlib.sha256).digest() for i in range(3))
    plain = bytes(c ^ s for c, s in zip(ciphertext, stream))
    assert plain == (PARK.pack() if desk else PARK.master_a + PARK.master_mac)
    trailers = admin_card.trailer_blocks(TRANSPORT, PARK, UID7, desk=desk)
    assert trailers[11][:6] == _kdf(TRANSPORT, b"AKA", UID7, b"\x02")[:6]
    assert trailers[11][10:] == _kdf(TRANSPORT, b"AKB", UID7, b"\x02")[:6]
    assert (27 in trailers) == desk and (26 in blocks) == desk


@pytest.mark.parametrize("uid", [UID4, UID7])
def test_round_trip_booth_and_desk(uid):
    blocks = admin_card.seal(TRANSPORT, PARK, 0xFFFFFFFF, uid, NONCE, desk=True)
    card_no, booth = admin_card.unseal(TRANSPORT, blocks, uid)
    assert card_no == 0xFFFFFFFF and isinstance(booth, admin_card.BoothKeys) and booth.master_b is None
    assert (booth.master_a, booth.master_mac) == (PARK.master_a, PARK.master_mac)
    card_no, desk = admin_card.unseal(TRANSPORT, blocks, uid, desk=True)
    assert desk.pack() == PARK.pack()
    assert admin_card.unpack_keys(booth.pack()).pack() == booth.pack()
    assert admin_card.unpack_keys(desk.pack()).pack() == PARK.pack()


def test_two_cards_with_fresh_nonces_share_no_ciphertext():
    a = admin_card.seal(TRANSPORT, PARK, 1, UID4, bytes(10))
    b = admin_card.seal(TRANSPORT, PARK, 1, UID4, b"\x01" + bytes(9))
    assert all(a[blk] != b[blk] for blk in admin_card.BOOTH_BLOCKS)


@pytest.mark.parametrize("desk", [False, True])
def test_every_bit_flip_in_the_blob_is_refused(desk):
    good = admin_card.seal(TRANSPORT, PARK, ADMIN_NO, UID7, NONCE, desk=True)
    for block in admin_card.blob_blocks(desk):
        for bit in range(128):
            bad = dict(good)
            raw = bytearray(bad[block])
            raw[bit // 8] ^= 1 << (bit % 8)
            bad[block] = bytes(raw)
            with pytest.raises(BadMac):
                admin_card.unseal(TRANSPORT, bad, UID7, desk)


@pytest.mark.parametrize("desk", [False, True])
def test_swapped_blocks_are_refused(desk):
    good = admin_card.seal(TRANSPORT, PARK, ADMIN_NO, UID7, NONCE, desk=True)
    blob = admin_card.blob_blocks(desk)
    for i, x in enumerate(blob):
        for y in blob[i + 1:]:
            bad = dict(good)
            bad[x], bad[y] = good[y], good[x]
            with pytest.raises(BadMac):
                admin_card.unseal(TRANSPORT, bad, UID7, desk)


def test_clone_onto_another_uid_wrong_transport_key_and_mixed_cards_are_refused():
    good = admin_card.seal(TRANSPORT, PARK, ADMIN_NO, UID7, NONCE, desk=True)
    for desk in (False, True):
        with pytest.raises(BadMac):
            admin_card.unseal(TRANSPORT, good, bytes.fromhex("04a1b2c3d4e5f7"), desk)   # cloned card
        with pytest.raises(BadMac):
            admin_card.unseal(TRANSPORT, good, UID7[-4:], desk)
        with pytest.raises(BadMac):
            admin_card.unseal(bytes(32), good, UID7, desk)
    # the header of another admin card (another number, same UID) on this card's ciphertext
    other = admin_card.seal(TRANSPORT, PARK, ADMIN_NO + 1, UID7, NONCE, desk=True)
    mixed = dict(good)
    mixed[8] = other[8]
    with pytest.raises(BadMac):
        admin_card.unseal(TRANSPORT, mixed, UID7)
    # a booth blob presented where the desk blob belongs is another kind, other keys
    moved = dict(good)
    for src, dst in zip(admin_card.BOOTH_BLOCKS, admin_card.DESK_BLOCKS):
        moved[dst] = good[src]
    with pytest.raises(BadMac):
        admin_card.unseal(TRANSPORT, moved, UID7, True)


def test_bad_input_is_a_named_error():
    with pytest.raises(Malformed):
        admin_card.seal(TRANSPORT, PARK, 1, UID4, bytes(9))
    with pytest.raises(Malformed):
        admin_card.seal(TRANSPORT[:16], PARK, 1, UID4, NONCE)
    with pytest.raises(Malformed):
        admin_card.seal(TRANSPORT, admin_card.booth_keys(PARK), 1, UID4, NONCE, desk=True)
    booth_only = admin_card.seal(TRANSPORT, PARK, 1, UID4, NONCE)
    with pytest.raises(Malformed):
        admin_card.unseal(TRANSPORT, booth_only, UID4, desk=True)
    with pytest.raises(Malformed):
        admin_card.unpack_keys(bytes(63))


# -- the Authoriser on the real driver and the virtual chip ---------------------------------------

class SpyReader:
    """The real driver, with the blocks it authenticated remembered."""

    def __init__(self, reader):
        self._reader = reader
        self.auth_blocks = []

    def auth(self, block, key, uid, use_key_b=False):
        self.auth_blocks.append(block)
        return self._reader.auth(block, key, uid, use_key_b)

    def __getattr__(self, name):
        return getattr(self._reader, name)


class Rig:
    """One terminal: wallet, key store with the transport key, Authoriser; a clock in ms."""

    def __init__(self, tmp_path, role=ROLE_POS, keystore=None, blacklist=None):
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.field = Field()
        chip = VirtualMFRC522(self.field)
        driver = RC522(chip.spi, chip.cs)
        driver.init()
        self.reader = SpyReader(driver)
        self.journal = Journal(str(tmp_path / "journal"), 56, segment_bytes=4096, max_segments=8)
        self.blacklist = blacklist or Blacklist(str(tmp_path / "blacklist"))
        self.wallet = w.Wallet(self.reader, self.journal, self.blacklist, 12, record_mac_for(b"K" * 32),
                               lambda: NOW)
        self.wallet.config = Config(version=3, role=role, category=1) if role else None
        self.wallet.last_hub_contact_s = self.wallet.blacklist_updated_s = NOW
        if keystore is None:
            keystore = FileKeyStore(str(tmp_path / "keys.json"))
            keystore.set("transport_key", TRANSPORT)
        self.keystore = keystore
        self.sent = []
        self.states = []
        self.now_ms = 1000
        self.auth = au.Authoriser(self.reader, keystore, self.wallet, lambda no, uid: self.sent.append((no, uid)),
                                  blacklist=self.blacklist, on_state=self.states.append,
                                  clock_ms=lambda: self.now_ms)

    def tap(self, virtual):
        for c in list(self.field.cards):
            self.field.remove(c)
        self.field.add(virtual)
        return virtual

    def restart(self, tmp_path, role=ROLE_POS):
        """Power cycle: a new wallet and Authoriser over the same key store."""
        return Rig(tmp_path, role, keystore=self.keystore, blacklist=self.blacklist)


def wallet_card(uid=UID4, balance=10000):
    info = card.CardInfo(500, expiry_day=TODAY + 30, perms=0xFFFF, issue_day=TODAY)
    return issued_card(PARK, uid, info, balance, NOW - 86400)


def admin(desk=True, transport=TRANSPORT, uid=UID7):
    return admin_system_card(transport, PARK, ADMIN_NO, uid, desk=desk)


def authorise(rig, virtual=None):
    rig.tap(virtual or admin())
    assert rig.auth.poll() == au.SENT
    assert rig.auth.on_command(frames.CMD_AUTH_CONFIRM, 0)
    assert rig.auth.state == au.SERVING


def test_fresh_terminal_takes_no_money_and_refuses_a_wallet_card(tmp_path):
    rig = Rig(tmp_path)
    assert rig.auth.state == au.LOCKED and rig.wallet.park_keys is None
    vc = rig.tap(wallet_card())
    before = [bytes(b) for b in vc.blocks]
    assert rig.wallet.debit(100).reason == w.NOT_READY
    assert rig.auth.poll() == au.NOT_ADMIN          # a wallet card does not open sector 2
    assert rig.sent == [] and rig.auth.state == au.LOCKED
    assert rig.wallet.debit(100).reason == w.NOT_READY
    assert [bytes(b) for b in vc.blocks] == before and rig.journal.last_seq() == 0
    rig.field.remove(vc)
    assert rig.auth.poll() == au.NO_CARD


def test_admin_tap_confirm_serves_and_survives_a_restart(tmp_path):
    rig = Rig(tmp_path)
    rig.tap(admin())
    assert rig.auth.poll() == au.SENT
    assert rig.sent == [(ADMIN_NO, UID7)] and rig.auth.state == au.PENDING
    # PENDING: keys in RAM only, still no money taken
    assert rig.keystore.get("park_keys") is None and rig.wallet.park_keys is None
    rig.tap(wallet_card())
    assert rig.wallet.debit(100).reason == w.NOT_READY
    assert rig.auth.on_command(frames.CMD_AUTH_CONFIRM, 0)
    assert rig.auth.state == au.SERVING and rig.states == [au.PENDING, au.SERVING]
    assert rig.keystore.get("park_keys") == PARK.master_a + PARK.master_mac
    vc = rig.tap(wallet_card())
    assert rig.wallet.debit(250).balance_cents == 9750
    again = rig.restart(tmp_path / "after")
    assert again.auth.state == au.SERVING and again.auth.poll() is None
    again.tap(vc)
    assert again.wallet.debit(250).balance_cents == 9500


def test_reject_and_timeout_forget_the_keys(tmp_path):
    rig = Rig(tmp_path)
    rig.tap(admin())
    assert rig.auth.poll() == au.SENT
    assert rig.auth.on_command(frames.CMD_AUTH_REJECT, 0)
    assert rig.auth.state == au.LOCKED and rig.auth.reason == au.REJECTED
    assert rig.auth._pending is None and rig.keystore.get("park_keys") is None
    rig.tap(wallet_card())
    assert rig.wallet.debit(100).reason == w.NOT_READY
    # tap again, the hub never answers
    rig.tap(admin())
    assert rig.auth.poll() == au.SENT
    rig.now_ms += au.AUTH_TIMEOUT_MS - 1
    assert rig.auth.poll() is None and rig.auth.state == au.PENDING
    rig.now_ms += 1
    rig.field.remove(rig.field.cards[0])
    assert rig.auth.poll() == au.NO_CARD and rig.auth.state == au.LOCKED and rig.auth.reason == au.TIMEOUT
    assert rig.auth._pending is None
    # a confirm arriving after the timeout authorises nothing
    assert rig.auth.on_command(frames.CMD_AUTH_CONFIRM, 0)
    assert rig.auth.state == au.LOCKED and rig.wallet.park_keys is None
    assert rig.auth.refused["unexpected_confirm"] == 1


@pytest.mark.parametrize("command", [frames.CMD_DEAUTHORISE, frames.CMD_LOCK])
def test_deauthorise_and_lock_delete_the_keys(tmp_path, command):
    rig = Rig(tmp_path)
    authorise(rig)
    assert rig.auth.on_command(command, 0)
    assert rig.auth.state == au.LOCKED and rig.wallet.park_keys is None
    assert rig.keystore.get("park_keys") is None and rig.keystore.get("transport_key") == TRANSPORT
    rig.tap(wallet_card())
    assert rig.wallet.debit(100).reason == w.NOT_READY
    assert rig.restart(tmp_path / "after").auth.state == au.LOCKED
    assert not rig.auth.on_command(frames.CMD_REPORT_STATUS, 0)


@pytest.mark.parametrize("role", [ROLE_POS, ROLE_RIDE, frames.ROLE_GATE])
def test_a_booth_never_reads_or_holds_master_b(tmp_path, role):
    rig = Rig(tmp_path, role)
    authorise(rig)
    assert rig.wallet.park_keys.master_b is None
    assert len(rig.keystore.get("park_keys")) == 64
    assert PARK.master_b.hex() not in open(str(tmp_path / "keys.json")).read()
    assert set(b // 4 for b in rig.reader.auth_blocks) == set(admin_card.BOOTH_SECTORS)   # desk sectors untouched


def test_a_desk_gets_master_b_and_drops_it_when_it_becomes_a_booth(tmp_path):
    rig = Rig(tmp_path, ROLE_DESK)
    authorise(rig)
    assert rig.wallet.park_keys.pack() == PARK.pack() and rig.keystore.get("park_keys") == PARK.pack()
    assert set(b // 4 for b in rig.reader.auth_blocks) == set(admin_card.DESK_SECTORS)
    rig.wallet.config = Config(version=4, role=ROLE_POS, category=1)   # re-commissioned as a booth
    assert rig.auth.poll() is None
    assert rig.wallet.park_keys.master_b is None and len(rig.keystore.get("park_keys")) == 64
    vc = rig.tap(wallet_card())
    assert rig.wallet.debit(100).ok
    # a booth made a desk must read the desk blob: locked until the admin card is tapped again
    rig.wallet.config = Config(version=5, role=ROLE_DESK, category=1)
    rig.field.remove(vc)
    assert rig.auth.poll() == au.NO_CARD and rig.auth.reason == au.ROLE_CHANGED
    assert rig.auth.state == au.LOCKED and rig.keystore.get("park_keys") is None


def test_stored_desk_keys_on_a_booth_are_cut_down_at_start(tmp_path):
    keystore = FileKeyStore(str(tmp_path / "keys.json"))
    keystore.set("transport_key", TRANSPORT)
    keystore.set("park_keys", PARK.pack())
    rig = Rig(tmp_path / "t", ROLE_RIDE, keystore=keystore)
    assert rig.auth.state == au.SERVING and rig.wallet.park_keys.master_b is None
    assert keystore.get("park_keys") == PARK.master_a + PARK.master_mac


def test_a_desk_cannot_be_authorised_by_a_booth_only_admin_card(tmp_path):
    rig = Rig(tmp_path, ROLE_DESK)
    rig.tap(admin(desk=False))
    assert rig.auth.poll() == au.NOT_ADMIN and rig.sent == []


def test_tampered_cloned_foreign_and_revoked_admin_cards_authorise_nothing(tmp_path):
    rig = Rig(tmp_path)
    tampered = admin()
    tampered.blocks[9][0] ^= 0x01                    # ciphertext
    rig.tap(tampered)
    assert rig.auth.poll() == "bad_mac"
    # every block copied onto a blank card of another UID whose trailers an attacker keyed correctly
    original = admin()
    clone = MifareClassic1K(UID4)
    for block in range(4, 64):
        clone.blocks[block][:] = original.blocks[block]
    for block, data in admin_card.trailer_blocks(TRANSPORT, PARK, UID4, desk=True).items():
        clone.blocks[block][:] = data
    rig.tap(clone)
    assert rig.auth.poll() == "bad_mac"
    rig.tap(admin(transport=bytes(32)))               # another park's transport key
    assert rig.auth.poll() == au.NOT_ADMIN
    rig.blacklist.apply_delta(0, 1, [ADMIN_NO], [])   # revoked admin card
    rig.tap(admin())
    assert rig.auth.poll() == au.REVOKED
    assert rig.sent == [] and rig.auth.state == au.LOCKED and rig.keystore.get("park_keys") is None
    assert rig.auth.refused == {"bad_mac": 2, au.NOT_ADMIN: 1, au.REVOKED: 1}


def test_no_config_or_no_transport_key_keeps_the_terminal_locked(tmp_path):
    rig = Rig(tmp_path, role=None)
    rig.tap(admin())
    assert rig.auth.poll() == au.NO_CONFIG and rig.sent == []
    rig.wallet.config = Config(version=3, role=ROLE_POS, category=1)
    assert rig.auth.poll() == au.SENT
    bare = FileKeyStore(str(tmp_path / "bare.json"))
    other = Rig(tmp_path / "bare", keystore=bare)
    other.tap(admin())
    assert other.auth.poll() == au.NO_TRANSPORT_KEY


def test_the_admin_card_is_not_a_wallet_to_a_serving_terminal(tmp_path):
    rig = Rig(tmp_path)
    authorise(rig)
    vc = rig.tap(admin())
    before = [bytes(b) for b in vc.blocks]
    assert rig.wallet.debit(100).reason == w.NOT_WALLET
    assert [bytes(b) for b in vc.blocks] == before and rig.sent == [(ADMIN_NO, UID7)]


def test_stored_keys_wait_for_the_role_before_being_cut_down(tmp_path):
    keystore = FileKeyStore(str(tmp_path / "keys.json"))
    keystore.set("transport_key", TRANSPORT)
    keystore.set("park_keys", PARK.pack())
    rig = Rig(tmp_path / "t", role=None, keystore=keystore)
    assert rig.auth.state == au.SERVING and rig.wallet.park_keys.pack() == PARK.pack()
    rig.wallet.config = Config(version=3, role=ROLE_DESK, category=1)
    assert rig.auth.poll() is None and rig.wallet.park_keys.pack() == PARK.pack()


def test_a_corrupt_key_store_entry_is_dropped(tmp_path):
    keystore = FileKeyStore(str(tmp_path / "keys.json"))
    keystore.set("transport_key", TRANSPORT)
    keystore.set("park_keys", bytes(50))
    rig = Rig(tmp_path / "t", keystore=keystore)
    assert rig.auth.state == au.LOCKED and rig.auth.reason == "malformed" and keystore.get("park_keys") is None


@pytest.mark.micropython
@pytest.mark.parametrize("role", [ROLE_POS, ROLE_DESK])
def test_authoriser_on_micropython_within_the_heap(micropython, role):
    uid = bytes.fromhex("04112233445566")
    with ChipServer([admin_system_card(TRANSPORT, PARK, ADMIN_NO, uid), wallet_card()]) as chip:
        proc = micropython(REPO / "tests" / "mpy" / "authorise_check.py", chip.port, TRANSPORT.hex(), role)
    got = dict(kv.split("=", 1) for line in proc.stdout.splitlines() for kv in line.split())
    desk = role == ROLE_DESK
    assert got["wallet_card"] == au.NOT_ADMIN and got["admin_card"] == au.SENT
    assert got["sent_card_no"] == str(ADMIN_NO) and got["sent_uid"] == uid.hex()
    assert got["stored"] == "None" and got["wallet_keys"] == "None" and got["state"] == au.LOCKED
    assert got["stored_hex"] == (PARK.pack() if desk else PARK.master_a + PARK.master_mac).hex()
    assert got["master_b"] == str(desk)
    assert int(got["heap_admin_tap"]) < 32 * 1024     # reading and unsealing the card, garbage included
