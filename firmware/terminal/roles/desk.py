"""The desk role: the hub has cards written here (SPEC.md §5.7), admin system cards and the like.

The hub sends the blocks in a MACed T_CARD_WRITE; the desk waits for the blank
card with that UID, writes each sector with the transport key A (MF1S50yyX §8.7.1
transport configuration: key A may write data blocks and the trailer), data
blocks first and the trailer last (the trailer changes the sector's keys), then
reports T_CARD_RESULT. No park key is needed or used: the hub is the authority.
Only a desk imports this module: it registers the T_CARD_WRITE handler with the
terminal's sync when the config makes the terminal a desk.
"""

from protocol import frames
from protocol.card import TRANSPORT_KEY
from terminal.app import Role as _Role
from terminal.rc522 import AuthError, RC522Error


class CardWriter:
    """One pending card write at a time, tried on each card presented."""

    def __init__(self, reader, send_result):
        self.reader = reader
        self.send_result = send_result   # (request_id, uid, status, block)
        self.job = None

    def start(self, request_id, uid, blocks):
        """Take a write from the hub: [(block, 16 bytes)] for the card with this UID."""
        self.job = (request_id, bytes(uid), blocks)

    def poll(self):
        """Try the pending write on the card in the field; return its status, or None when nothing happened."""
        if self.job is None:
            return None
        try:
            found = self.reader.detect()
        except RC522Error:
            return None
        if found is None:
            return None
        request_id, uid, blocks = self.job
        if found[0] != uid:
            self.reader.release()
            return None          # another card: keep waiting for the one the hub named
        status, failed_block = self._write(uid, blocks)
        self.reader.release()
        self.job = None
        self.send_result(request_id, uid, status, failed_block)
        return status

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
                        return frames.CARD_NOT_BLANK, block
                if block % 4 == 3:
                    trailer = (block, data)
                else:
                    self.reader.write_block(block, data)
        except RC522Error:
            return frames.CARD_WRITE_FAILED, block if block is not None else 0
        return frames.CARD_OK, 0


class Role(_Role):
    """Writes the cards the hub asks for; registers T_CARD_WRITE with the terminal's sync while it serves."""

    def __init__(self, app):
        _Role.__init__(self, app)
        runtime = app.runtime
        self.writer = CardWriter(app.wallet.reader, runtime.sync.send_card_result if runtime else None)
        if runtime is not None:
            runtime.sync.handle(frames.T_CARD_WRITE, self._on_card_write)

    def _on_card_write(self, frame):
        request_id, uid, blocks = frames.parse_card_write(frame.body)
        self.app.runtime.sync.state.save()  # a replayed write must stay refused after a reboot
        self.writer.start(request_id, uid, blocks)

    def close(self):
        """No longer a desk: card writes are refused again."""
        if self.app.runtime is not None:
            self.app.runtime.sync.handle(frames.T_CARD_WRITE, None)

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
        app.ui.message("Card to write", "Tap blank card")
        status = self.writer.poll()
        if status is None:
            await app.poll()
            return None
        app.ui.message("Card written" if status == frames.CARD_OK else "Write failed",
                       "" if status == frames.CARD_OK else "Use a blank card")
        await app.pause()
        return status
