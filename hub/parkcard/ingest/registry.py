"""Terminals known to the hub, kept in memory, and the frame checks common to every uplink.

Checks in the order of SPEC.md §5.2: topic (`foreign_topic`), size, length
and magic (`malformed`), version (`unsupported`), key lookup of the topic's
terminal (`unknown_terminal`), MAC under that key (`bad_mac`), type
(`unsupported`), topic terminal = frame terminal (`wrong_topic`). The counter
check is left to the consumer (ingest for up frames, fleet orders status by
boot).

Single process: the registry is the hub's memory of every terminal, and its
sequence state (counters, acked seq, seqs above a hole) is read once at load
and then advanced only by this process's writer. It assumes one hub process
per database (parkcard.hub_lock); spreading terminals over several hubs
needs that state to move into the store.
"""

from protocol import frames, hub_frames, topics
from protocol.errors import ProtocolError
from protocol.record import record_mac_for

FRAME_SIZE_MAX = hub_frames.FRAME_SIZE_MAX


class Rejected(Exception):
    """An uplink that failed verification; `reason` is a stable code stored in quarantine."""

    def __init__(self, reason, detail="", terminal_id=None):
        Exception.__init__(self, "%s: %s" % (reason, detail))
        self.reason = reason
        self.detail = detail
        self.terminal_id = terminal_id


def merchant_settings(merchant):
    """What a merchant row sets on its terminals' TerminalState: (commission_bps, park_id, park bears discounts)."""
    return merchant.commission_bps, merchant.park_id, merchant.discount_bearer == "park"


class TerminalState:
    """What the hub needs per terminal on the hot path; mirrors the terminals table.

    Two kinds of fields: settings an operator changes (`configure`, reloaded
    from the table) and sequence state that only the single writer advances
    (counters, acks, out-of-order seqs), read once at load.
    """

    def __init__(self, row, rate_bps, park_id=1, park_bears_discount=True):
        self.id = row.id
        self.key = None
        self.configure(row, rate_bps, park_id, park_bears_discount)
        self.counter_up = row.counter_up
        self.acked_upto = row.acked_upto
        self.above = set()           # stored seqs above acked_upto (late / out of order)
        self.counter_down = row.counter_down_reserved   # a restart skips the rest of the reserved block
        self.counter_down_reserved = row.counter_down_reserved
        self.status_boot = row.status_boot
        # The column status_counter keeps the uptime_s of the boot's last online report (None: none
        # yet): it orders status within a boot, since every status frame has counter 0 (SPEC.md §5.3).
        self.status_uptime_s = row.status_counter
        self.boot_window = (row.boot_window_at, row.boot_window_first)

    def configure(self, row, rate_bps, park_id=1, park_bears_discount=True):
        """Take the operator's settings from a terminals row; sequence state is left alone."""
        self.park_bears_discount = park_bears_discount     # the merchant's discount bearer (SPEC.md §7.5)
        self.merchant_id = row.merchant_id
        self.role = row.role
        self.name = row.name
        self.config_version = row.config_version
        self.fixed_price_cents = row.fixed_price_cents
        self.category = row.category
        self.rate_bps = rate_bps
        self.park_id = park_id
        self.authorised = row.authorised
        key = bytes(row.key)
        if key != self.key:
            self.key = key
            self.frame_mac = frames.frame_mac_for(key)
            self.record_mac = record_mac_for(key)


class Registry:
    """terminal id -> TerminalState, loaded from storage and updated by the single writer."""

    def __init__(self, storage):
        self.storage = storage
        self.terminals = {}

    async def load(self):
        """Read every terminal and its out-of-order seqs."""
        merchants = await self._merchants()
        above = await self.storage.seqs_above_ack()     # one query for the whole fleet
        self.terminals = {}
        for row in await self.storage.terminals():
            self._put(row, merchants, above.get(row.id, ()))
        return self

    async def reload_terminal(self, terminal_id):
        """Refresh one terminal's settings after a registry change; None if not registered.

        A terminal already loaded keeps its object and its sequence state: a
        batch being ingested holds that object and advances its counters, and
        a fresh copy read meanwhile would undo them.
        """
        rows = await self.storage.terminals(terminal_id)
        if not rows:
            return None
        above = () if terminal_id in self.terminals else (await self.storage.seqs_above_ack(terminal_id)).get(
            terminal_id, ())
        return self._put(rows[0], await self._merchants(), above)

    async def _merchants(self):
        """{merchant id: (commission_bps, park_id, the park bears its discounts)}."""
        return {m.id: merchant_settings(m) for m in await self.storage.merchants()}

    def _put(self, row, merchants, above):
        settings = merchants.get(row.merchant_id, (0, 1, True))
        state = self.terminals.get(row.id)
        if state is not None:
            state.configure(row, *settings)   # its sequence state is the writer's
            return state
        state = TerminalState(row, *settings)
        state.above = set(above)
        self.terminals[state.id] = state
        return state

    def get(self, terminal_id):
        """Return the TerminalState or None."""
        return self.terminals.get(terminal_id)

    def verify(self, topic, payload, leaf):
        """Return (TerminalState, Frame) of a verified uplink on parkcard/term-<id>/<leaf>, or raise Rejected."""
        terminal_id = topics.terminal_of(topic)
        if terminal_id is None or not topic.endswith("/" + leaf):
            raise Rejected("foreign_topic", topic)
        if len(payload) > FRAME_SIZE_MAX:   # one reason with the length check (SPEC.md §5.2)
            raise Rejected("malformed", "frame of %d bytes over %d" % (len(payload), FRAME_SIZE_MAX), terminal_id)
        try:
            frames.peek_terminal(payload)
        except ProtocolError as exc:
            raise Rejected(exc.reason, exc.detail, terminal_id) from None
        state = self.terminals.get(terminal_id)
        if state is None:
            raise Rejected("unknown_terminal", "term-%d is not registered" % terminal_id, terminal_id)
        try:   # the topic's key: the broker's ACL says who may publish there (SPEC.md §5.2)
            frame = frames.decode(state.frame_mac, payload)
        except ProtocolError as exc:
            raise Rejected(exc.reason, exc.detail, terminal_id) from None
        if frame.terminal_id != terminal_id:
            raise Rejected("wrong_topic", "frame of term-%d on %s" % (frame.terminal_id, topic), terminal_id)
        return state, frame
