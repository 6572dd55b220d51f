"""MIFARE Classic value blocks through the RC522: INCREMENT, DECREMENT, RESTORE, TRANSFER (MF1S50yyX §12.5-7).

ParkCard keeps money in MACed data blocks (protocol/SPEC.md §3), never in value blocks, so no terminal
imports this: each method here would cost a booth's heap about 170 bytes for nothing. It serves the
driver's tests against the virtual chip and any tool that needs value blocks.
"""

from terminal.compat import const
from terminal.rc522 import RC522, NoCard

# MF1S50yyX §12 card commands.
_MF_DECREMENT = const(0xC0)
_MF_INCREMENT = const(0xC1)
_MF_RESTORE = const(0xC2)
_MF_TRANSFER = const(0xB0)
# MF1S50yyX §11 time-outs in the RC522 timer's 0.1 ms ticks (rc522.py's timer): a value operation's
# operand 5 ms, TRANSFER's EEPROM write 10 ms.
_TICKS_OPERAND = const(50)
_TICKS_TRANSFER = const(100)


class ValueBlockRC522(RC522):
    """terminal.rc522.RC522 with the value block operations (same constructor)."""

    def _value_op(self, cmd, block, operand):
        """§12.5-6: command (ACK), then a 4-byte operand the card does not acknowledge."""
        if not -0x80000000 <= operand <= 0x7FFFFFFF:
            raise ValueError("operand is a signed 32-bit value")
        self._ack(self._command(cmd, block))
        operand &= 0xFFFFFFFF
        tx = self._tx
        for i in range(4):
            tx[1 + i] = (operand >> (8 * i)) & 0xFF
        try:
            answer = self._transceive(self._append_crc(4), _TICKS_OPERAND)
        except NoCard:
            return      # silence is the card accepting it
        self._ack(answer)   # a NAK raises

    def increment(self, block, delta):
        """INCREMENT (§12.5): the value block plus delta into the transfer buffer."""
        self._value_op(_MF_INCREMENT, block, delta)

    def decrement(self, block, delta):
        """DECREMENT (§12.5): the value block minus delta into the transfer buffer."""
        self._value_op(_MF_DECREMENT, block, delta)

    def restore(self, block):
        """RESTORE (§12.5): the value block into the transfer buffer."""
        self._value_op(_MF_RESTORE, block, 0)

    def transfer(self, block):
        """TRANSFER (§12.7): the value buffer into block, acknowledged."""
        self._ack(self._command(_MF_TRANSFER, block, _TICKS_TRANSFER))
