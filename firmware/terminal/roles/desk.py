"""The desk role: the hub has cards written here (SPEC.md §5.7, §5.9): admin system cards, card stock, and
every front-desk operation on a visitor card.

Desk orders (T_DESK_ORDER, SPEC.md §5.9) read the card on the desk, or write
blocks and read them back, with the sector key the order carries (wrapped
under this terminal's frame key); the desk reports what the card holds after
(T_DESK_REPORT). The hub decides and posts: the desk never computes a value.

The hub sends the blocks in a MACed T_CARD_WRITE; the desk waits for the blank
card with that UID, writes each sector with the transport key A (MF1S50yyX §8.7.1
transport configuration: key A may write data blocks and the trailer), data
blocks first and the trailer last (the trailer changes the sector's keys), then
reports T_CARD_RESULT. No park key is needed or used: the hub is the authority.
Only a desk imports this module: it registers the T_CARD_WRITE handler with the
terminal's sync when the config makes the terminal a desk.
"""

from protocol import desk as D
from protocol import card_write, frames
from protocol.card import TRANSPORT_KEY
from terminal.app import Role as _Role
from terminal.rc522 import AuthError, RC522Error


class CardWriter:
    """One pending card write at a time, tried on each card presented."""

    def __init__(self, reader, send_result, send_report=None):
        self.reader = reader
        self.send_result = send_result   # (request_id, uid, status, block)
        self.send_report = send_report   # (T_DESK_REPORT body)
        self.job = None

    def start(self, request_id, uid, blocks):
        """Take a write from the hub: [(block, 16 bytes)] for the card with this UID."""
        self.job = (request_id, bytes(uid), blocks)

    def start_order(self, request_id, op, uid, key_type, key, blocks):
        """Take a desk order (SPEC.md §5.9); it replaces one not yet carried out (the hub asks again)."""
        self.job = (request_id, bytes(uid), (op, key_type, key, blocks))

    def poll(self):
        """Try the pending write on the card in the field; return its status, or None when nothing happened."""
        if self.job is None:
            return None
        try:
            # Every job wakes a halted card too (WUPA, ISO 14443-3 §6.2.3): the card left on the desk after
            # the hub's previous order stays HALTed in the field until it is taken away, and a cashier who
            # read a blank card before stocking it leaves it there. A write names its UID: no other is written.
            found = self.reader.detect(True)
        except RC522Error:
            return None
        if found is None:
            return None
        request_id, uid, blocks = self.job
        if found[0] != uid and not (uid == D.ANY_CARD and isinstance(blocks, tuple) and blocks[0] == D.OP_IDENTIFY):
            self.reader.release()
            return None          # another card: keep waiting for the one the hub named
        if isinstance(blocks, tuple):
            status, read = self._order(found[0], blocks)
            self.reader.release()
            self.job = None
            self.send_report(D.report_body(request_id, status, found[0], read))
            return status
        status, failed_block = self._write(uid, blocks)
        self.reader.release()
        self.job = None
        self.send_result(request_id, uid, status, failed_block)
        return status

    def _order(self, uid, order):
        """Carry out a desk order on the card in the field: (status, [(block, 16 bytes)] read after)."""
        op, key_type, key, blocks = order
        if op == D.OP_IDENTIFY:
            return D.DESK_OK, []
        use_b = key_type == D.KEY_B
        read_blocks = D.read_blocks(op)    # sector 1's, or a ticket write's sector 3 (SPEC.md §3.12)
        try:
            self.reader.auth(read_blocks[0], key, uid, use_b)
        except AuthError:
            return D.DESK_NOT_OURS, []
        except RC522Error:
            return D.DESK_READ_FAILED, []
        try:
            for block, data in blocks:     # in the hub's order: the info block before the slot (SPEC.md §5.9)
                self.reader.write_block(block, data)
        except RC522Error:
            return D.DESK_WRITE_FAILED, self._read_back(uid, key, use_b, read_blocks)
        read = self._read_back(uid, key, use_b, read_blocks)
        return (D.DESK_OK if read else D.DESK_READ_FAILED), read

    def _read_back(self, uid, key, use_b, read_blocks):
        """The blocks as the card holds them now ([] when it left); after a failed write, a fresh session."""
        try:
            try:
                return [(b, bytes(self.reader.read_block(b))) for b in read_blocks]
            except RC522Error:
                self.reader.release()
                if self.reader.detect() is None:
                    return []
                self.reader.auth(read_blocks[0], key, uid, use_b)
                return [(b, bytes(self.reader.read_block(b))) for b in read_blocks]
        except RC522Error:
            return []

    def _write(self, uid, blocks):
        sector = -1
        trailer = None
        try:
            for block, data in blocks + [(None, None)]:
                if block is None or block // 4 != sector:
                    if trailer is not None:        # close the previous sector: its trailer last
                        self.reader.write_block(trailer[0], trailer[1])
                        trailer = None
                    if block is None:
                        break
                    sector = block // 4
                    try:
                        self.reader.auth(sector * 4 + (1 if sector == 0 else 0), TRANSPORT_KEY, uid)
                    except AuthError:
                        return card_write.CARD_NOT_BLANK, block
                if block % 4 == 3:
                    trailer = (block, data)
                else:
                    self.reader.write_block(block, data)
        except RC522Error:
            return card_write.CARD_WRITE_FAILED, block if block is not None else 0
        return card_write.CARD_OK, 0


class Role(_Role):
    """Writes the cards the hub asks for; registers T_CARD_WRITE with the terminal's sync while it serves."""

    def __init__(self, app):
        _Role.__init__(self, app)
        runtime = app.runtime
        self.writer = CardWriter(app.wallet.reader, self._send_card_result if runtime else None,
                                 self._send_report if runtime else None)
        if runtime is not None:
            runtime.sync.handle(frames.T_CARD_WRITE, self._on_card_write)
            runtime.sync.handle(frames.T_DESK_ORDER, self._on_desk_order)

    def _send_card_result(self, request_id, uid, status, block):
        # How a card write the hub asked for ended (SPEC.md §5.7), by sync's bounded sender.
        self.app.runtime.sync._send_soon(frames.T_CARD_RESULT, card_write.card_result_body(request_id, uid, status,
                                                                                          block))

    def _send_report(self, body):
        # sync's bounded sender, as T_CARD_RESULT goes: a report not delivered is asked for again by the hub.
        self.app.runtime.sync._send_soon(frames.T_DESK_REPORT, body)

    def _on_card_write(self, frame):
        request_id, uid, blocks = card_write.parse_card_write(frame.body)
        self.app.runtime.sync.state.save()  # a replayed write must stay refused after a reboot
        self.writer.start(request_id, uid, blocks)

    def _on_desk_order(self, frame):
        request_id, op, uid, key_type, wrapped, blocks = D.parse_order(frame.body)
        self.app.runtime.sync.state.save()  # a replayed order must stay refused after a reboot
        key = D.unwrap_key(self.app.runtime.sync.frame_mac, request_id, wrapped)
        self.writer.start_order(request_id, op, uid, key_type, key, blocks)

    def close(self):
        """No longer a desk: card writes and desk orders are refused again."""
        if self.app.runtime is not None:
            self.app.runtime.sync.handle(frames.T_CARD_WRITE, None)
            self.app.runtime.sync.handle(frames.T_DESK_ORDER, None)

    def busy(self):
        """True while the hub's card write waits for its card."""
        return self.writer.job is not None

    async def serve(self, cfg):
        """One step: try the pending write, or show the desk's idle screen."""
        return await self.write_card_once() if self.busy() else await self._idle()

    async def _idle(self):
        self.app.ui.message("ParkCard desk", "Ready")
        await self.app.poll()

    async def write_card_once(self):
        """The hub asked for a card to be written; wait for it and say how it went."""
        app = self.app
        app.ui.message("Card to write" if isinstance(self.writer.job[2], list) else "Desk", "Place the card")
        status = self.writer.poll()
        if status is None:
            await app.poll()
            return None
        app.ui.message("Done" if status == card_write.CARD_OK else "Card failed",
                       "" if status == card_write.CARD_OK else "Try again")
        await app.pause()
        return status
