"""Authorisation by the admin system card (protocol/SPEC.md §6.6).

    LOCKED --admin card tapped, seal verified, T_AUTH sent--> PENDING
    PENDING --CMD_AUTH_CONFIRM--> SERVING (keys to the key store and the wallet)
    PENDING --CMD_AUTH_REJECT, or no answer within timeout_ms--> LOCKED (keys forgotten)
    SERVING --CMD_DEAUTHORISE or CMD_LOCK--> LOCKED (keys deleted from the key store)

While PENDING the keys live in RAM only and the wallet has none, so no card is
served before the hub confirmed. Which blob is read follows the role in the
hub's config: a desk reads the desk blob (master A, B, MAC), every other role
the booth blob (master A, MAC): a booth never reads, holds or stores master B.
"""

from protocol.card import booth_keys, unpack_keys
from protocol.config import ROLE_DESK
from protocol.errors import ProtocolError
from protocol.frames import CMD_AUTH_CONFIRM, CMD_AUTH_REJECT, CMD_DEAUTHORISE, CMD_LOCK
from terminal.compat import const, forget, ticks_diff, ticks_ms

_KEY_PARK_KEYS = const("park_keys")  # key store: 96 bytes (desk) or 64 bytes (booth)
KEY_TRANSPORT = "transport_key"      # key store: 32 bytes, set at flashing
AUTH_TIMEOUT_MS = 30000              # PENDING -> LOCKED without an answer from the hub

# States
LOCKED = "locked"
PENDING = "pending"
SERVING = "serving"

# Tap outcomes (poll() and tap()), and why the terminal went back to LOCKED
SENT = "sent"                        # seal verified, T_AUTH sent: now PENDING
NO_CARD = "no_card"
NOT_ADMIN = "not_admin"              # the sector keys do not open it: a wallet or foreign card
READ_FAILED = "read_failed"          # the card left or the read failed: tap again
REVOKED = "revoked"                  # the admin card number is on the blacklist
NO_CONFIG = "no_config"              # no role from the hub yet: cannot tell which blob to read
NO_TRANSPORT_KEY = "no_transport_key"
REJECTED = "rejected"
TIMEOUT = "timeout"
DEAUTHORISED = "deauthorised"
TERMINAL_LOCKED = "terminal_locked"
ROLE_CHANGED = "role_changed"
# and the ProtocolError reasons of unseal: "bad_mac", "malformed", "unsupported"


class Authoriser:
    """The LOCKED / PENDING / SERVING state machine of one terminal.

    reader: terminal.rc522.RC522; keystore: get/set/delete of bytes (NVS);
    wallet: terminal.wallet.Wallet, whose park_keys this sets and clears and
    whose config gives the role; send_auth(admin_card_no, uid) publishes T_AUTH;
    blacklist (optional): admin card numbers on it are refused here already;
    on_state(state) (optional) is called after every change of state.
    """

    def __init__(self, reader, keystore, wallet, send_auth, blacklist=None, on_state=None,
                 timeout_ms=AUTH_TIMEOUT_MS, clock_ms=ticks_ms):
        self.reader = reader
        self.keystore = keystore
        self.wallet = wallet
        self.send_auth = send_auth
        self.blacklist = blacklist
        self.on_state = on_state
        self.timeout_ms = timeout_ms
        self._clock_ms = clock_ms
        self.state = LOCKED
        self.reason = None               # why the terminal is LOCKED, or the last refused tap
        self.admin_card_no = None        # the card that unlocked (PENDING, SERVING this boot)
        self.refused = {}                # reason -> count of refused taps and unexpected commands
        self._pending = None             # keys while PENDING: RAM only
        self._pending_since_ms = 0
        wallet.park_keys = None
        self._load()

    @property
    def authorised(self):
        """True while SERVING (the status frame's `authorised`)."""
        return self.state == SERVING

    def _load(self):
        """After a restart: serve with the keys a confirmed authorisation stored."""
        raw = self.keystore.get(_KEY_PARK_KEYS)
        if raw is None:
            return
        try:
            keys = unpack_keys(raw)
        except ProtocolError:
            self.keystore.delete(_KEY_PARK_KEYS)
            self.reason = "malformed"
            return
        self._serve(keys)
        self.check_role()

    def _set_state(self, state, reason=None):
        self.state = state
        self.reason = reason
        if self.on_state is not None:
            self.on_state(state)

    def _serve(self, keys, store=False):
        if store:
            self.keystore.set(_KEY_PARK_KEYS, keys.pack())    # before use: a failed write leaves PENDING
        self._pending = None
        self.wallet.park_keys = keys
        self._set_state(SERVING)
        # Serving: the admin card's reading (loaded by tap() while LOCKED) leaves the heap.
        forget("terminal.admin_tap")
        forget("protocol.admin_card")

    def _lock(self, reason):
        self._pending = None
        self.admin_card_no = None
        self.wallet.park_keys = None
        self.keystore.delete(_KEY_PARK_KEYS)
        self._set_state(LOCKED, reason)

    def desk_role(self):
        """True when the hub's config makes this terminal a desk (it reads and holds the desk blob)."""
        cfg = self.wallet.config
        return cfg is not None and cfg.role == ROLE_DESK

    # -- the tap loop ------------------------------------------------------------

    def poll(self):
        """Call from the tap loop while not serving (cheap when serving).

        Times out a PENDING authorisation, keeps the keys held matched to the
        role, and while LOCKED tries to read an admin card: returns the tap's
        outcome (SENT, NO_CARD, a refusal) or None when not LOCKED.
        """
        if self.state == PENDING and ticks_diff(self._clock_ms(), self._pending_since_ms) >= self.timeout_ms:
            self._lock(TIMEOUT)
        self.check_role()
        if self.state != LOCKED:
            return None
        return self.tap()

    def tap(self):
        """LOCKED: read and verify an admin card; on success hold its keys in RAM and send T_AUTH."""
        if self.state != LOCKED:
            return None
        # Imported here, not at the top: a terminal that serves with stored keys never reads an admin card.
        from terminal.admin_tap import tap
        return tap(self)

    def hold(self, card_no, keys, uid):
        """An admin card's seal checked: hold its keys in RAM (PENDING) and send T_AUTH."""
        self._pending = keys
        self._pending_since_ms = self._clock_ms()
        self.admin_card_no = card_no
        self._set_state(PENDING)
        self.send_auth(card_no, uid)
        return SENT

    def refuse(self, reason):
        """A tap refused for reason: counted, kept as the reason shown; returns it."""
        self.refused[reason] = self.refused.get(reason, 0) + 1
        self.reason = reason
        return reason

    def check_role(self):
        """Keys follow the role: a booth drops master B; a desk holding booth keys must re-read the card.

        Nothing changes before the hub's config is known (only a desk writes 96 bytes to the key store).
        """
        if self.wallet.config is None:
            return
        desk = self.desk_role()
        if self.state == SERVING:
            keys = self.wallet.park_keys
            if keys.master_b is not None and not desk:
                self._serve(booth_keys(keys), store=True)
            elif keys.master_b is None and desk:
                self._lock(ROLE_CHANGED)
        elif self.state == PENDING and (self._pending.master_b is not None) != desk:
            self._lock(ROLE_CHANGED)

    # -- the hub's answers (SPEC.md §5.3 type 0x24) ---------------------------------

    def on_command(self, command, argument=0):
        """Apply an authorisation command from the hub; False for commands that are not about it."""
        if command == CMD_AUTH_CONFIRM:
            if self.state != PENDING:
                self.refuse("unexpected_confirm")
                return True
            self.check_role()
            if self.state == PENDING:
                self._serve(self._pending, store=True)
        elif command == CMD_AUTH_REJECT:
            if self.state == PENDING:
                self._lock(REJECTED)
            else:
                self.refuse("unexpected_reject")
        elif command == CMD_DEAUTHORISE:
            self._lock(DEAUTHORISED)
        elif command == CMD_LOCK:
            self._lock(TERMINAL_LOCKED)
        else:
            return False
        return True
