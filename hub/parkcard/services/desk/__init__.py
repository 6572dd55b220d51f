"""The front desk's operations (issue, top-up, card stock ...), each once, for the CLI, the hub and the API.

Every operation goes (DESIGN.md "Terminals and roles", SPEC.md §5.9): the desk
terminal reads the card and reports; the hub decides; the operation is kept as
pending, with the write it asks for, under the caller's operation id BEFORE the
desk is asked to write; the desk writes and reads the card back; the operation
is posted (a record of the hub's desk source, SPEC.md §4.6, through the same
ingest path as an upload) only once the card is seen to hold the write. A write
whose outcome is not seen is resolved by reading the card again, never guessed:
a retry with the same operation id does exactly that.
"""

from parkcard.services.desk.operations import (DeskPath, issue, refund, return_card, stock_card, top_up, wipe_card,
                                               write_tier)
from parkcard.services.desk.replacement import replace

__all__ = ["AtDesk", "DeskPath", "issue", "refund", "replace", "return_card", "stock_card", "top_up", "wipe_card",
           "write_tier"]


class AtDesk:
    """The desk operations at one desk terminal, run by one actor (the hub's own, the simulator's cashier)."""

    def __init__(self, path, actor, desk_terminal_id):
        self.path = path
        self.actor = actor
        self.desk_terminal_id = desk_terminal_id

    async def top_up(self, op_id, cash_cents, **options):
        """parkcard.services.desk.top_up at this desk."""
        return await top_up(self.path, self.actor, op_id, self.desk_terminal_id, cash_cents, **options)

    async def issue(self, op_id, cash_cents, **options):
        """parkcard.services.desk.issue at this desk."""
        return await issue(self.path, self.actor, op_id, self.desk_terminal_id, cash_cents, **options)

    async def refund(self, op_id, amount_cents, **options):
        """parkcard.services.desk.refund at this desk."""
        return await refund(self.path, self.actor, op_id, self.desk_terminal_id, amount_cents, **options)

    async def return_card(self, op_id, **options):
        """parkcard.services.desk.return_card at this desk."""
        return await return_card(self.path, self.actor, op_id, self.desk_terminal_id, **options)

    async def wipe_card(self, op_id, **options):
        """parkcard.services.desk.wipe_card at this desk."""
        return await wipe_card(self.path, self.actor, op_id, self.desk_terminal_id, **options)

    async def replace(self, op_id, lost_card_no, **options):
        """parkcard.services.desk.replace at this desk: the stock card on it replaces the lost card."""
        return await replace(self.path, self.actor, op_id, self.desk_terminal_id, lost_card_no, **options)

    async def write_tier(self, op_id, **options):
        """parkcard.services.desk.write_tier at this desk: the hub's tier onto the card on it."""
        return await write_tier(self.path, self.actor, op_id, self.desk_terminal_id, **options)
