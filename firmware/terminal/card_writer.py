"""Desk terminals write cards the hub prepared (SPEC.md §5.7): admin system cards and the like.

The hub sends the blocks in a MACed T_CARD_WRITE; the desk waits for the blank
card with that UID, writes each sector with the factory key A (MF1S50yyX §8.7.1
transport configuration: key A may write data blocks and the trailer), data
blocks first and the trailer last (the trailer changes the sector's keys), then
reports T_CARD_RESULT. No park key is needed or used: the hub is the authority.
"""

from protocol import frames
from terminal.rc522 import AuthError, RC522Error

FACTORY_KEY = b"\xff\xff\xff\xff\xff\xff"


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
                        self.reader.auth(sector * 4 + (1 if sector == 0 else 0), FACTORY_KEY, uid)
                    except AuthError:
                        return frames.CARD_NOT_BLANK, block
                if block % 4 == 3:
                    trailer = (block, data)
                else:
                    self.reader.write_block(block, data)
        except RC522Error:
            return frames.CARD_WRITE_FAILED, block if block is not None else 0
        return frames.CARD_OK, 0
