"""Members and lost cards in the store (挂失/解挂): SQL every backend runs as written (a mixin).

A backend's store mixes MemberMethods in beside SharedMethods (parkcard.store.reads) and offers the same
`_one`, `_all` and `write`; replacements are parkcard.store.replacements'.
"""

from parkcard.domain.explained import Word
from parkcard.domain.lifecycle import CardStatus
from parkcard.store.errors import Refused
from parkcard.store.rows import CardLoss, Member

LOST, FOUND, REPLACED = "lost", "found", "replaced"
MEMBER_NO_FIRST = 1001
_MEMBER_SELECT = "SELECT %s FROM members " % ", ".join(Member._fields)
_LOSS_SELECT = "SELECT %s FROM card_losses " % ", ".join(CardLoss._fields)


def tier_written_in(tx, card_no, tier):
    """The card's info block holds tier now (inside the write that posts the desk's write of it): if that is the
    hub's tier, nothing is pending for it."""
    tx.sql_rowcount("UPDATE cards SET tier_on_card=NULL WHERE card_no=? AND tier=?", (card_no, tier))


def card_member_in(tx, card_no, member_no):
    """Inside a write: the card belongs to member member_no (set as its issue is posted)."""
    tx.sql_rowcount("UPDATE cards SET member_no=? WHERE card_no=?", (member_no, card_no))


class MemberTaken(Refused):
    """A member with this phone number exists already (the message names them)."""


class MemberMethods:
    """interface.Store's member and loss methods, one SQL for every backend."""

    async def add_member(self, name, phone, note, tier, audit=None):
        """Register a member; return the Member. MemberTaken when the phone number has one."""
        def run(tx):
            taken = tx.sql_row("SELECT member_no, name FROM members WHERE phone=?", (phone,))
            if taken is not None:
                raise MemberTaken("phone %(phone)s is member %(member)d's (%(name)s)", phone=phone, member=taken[0],
                                  name=taken[1])
            last = tx.sql_row("SELECT MAX(member_no) FROM members")[0]
            member = Member(max(MEMBER_NO_FIRST, (last or 0) + 1), name, phone, note, tier, tx.now)
            tx.sql_rowcount("INSERT INTO members(member_no, name, phone, note, tier, created_at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", member)
            return member
        return await self.write(run, audit)

    async def member(self, member_no=None, phone=None, card_no=None):
        """The Member by number, phone or one of their cards; None when there is none."""
        if card_no is not None:
            return await self._one_as(Member, _MEMBER_SELECT + "WHERE member_no=(SELECT member_no FROM cards "
                                      "WHERE card_no=?)", (card_no,))
        if phone is not None:
            return await self._one_as(Member, _MEMBER_SELECT + "WHERE phone=?", (phone,))
        return await self._one_as(Member, _MEMBER_SELECT + "WHERE member_no=?", (member_no,))

    async def members(self):
        """[Member] by number."""
        return [Member(*r) for r in await self._all(_MEMBER_SELECT + "ORDER BY member_no")]

    async def member_cards(self, member_no):
        """[card_no] of the member's cards, oldest first."""
        return [r[0] for r in await self._all("SELECT card_no FROM cards WHERE member_no=? ORDER BY card_no",
                                              (member_no,))]

    async def set_member_tier(self, member_no, tier, audit=None):
        """Set a member's tier and the hub's tier of their cards; return the cards changed (None: no member).

        A card keeps the tier its info block holds as tier_on_card until the desk writes the new one onto it
        (tier_written_in); back at the tier the card holds, nothing is pending."""
        def run(tx):
            if tx.sql_rowcount("UPDATE members SET tier=? WHERE member_no=?", (tier, member_no)) != 1:
                return None
            # Every SET reads the row as it was: the card's tier is the old tier_on_card, or the old tier.
            return tx.sql_rowcount("UPDATE cards SET tier_on_card=CASE WHEN COALESCE(tier_on_card, tier)=? THEN NULL "
                                   "ELSE COALESCE(tier_on_card, tier) END, tier=? WHERE member_no=?",
                                   (tier, tier, member_no))
        return await self.write(run, audit)

    async def set_member_details(self, member_no, name, phone, note, audit=None):
        """Change a member's name, phone and note; return the Member (None: no member). MemberTaken for a phone
        number another member has."""
        def run(tx):
            taken = tx.sql_row("SELECT member_no, name FROM members WHERE phone=? AND member_no<>?", (phone, member_no))
            if taken is not None:
                raise MemberTaken("phone %(phone)s is member %(member)d's (%(name)s)", phone=phone, member=taken[0],
                                  name=taken[1])
            if tx.sql_rowcount("UPDATE members SET name=?, phone=?, note=? WHERE member_no=?",
                               (name, phone, note, member_no)) != 1:
                return None
            return Member(*tx.sql_row(_MEMBER_SELECT + "WHERE member_no=?", (member_no,)))
        return await self.write(run, audit)

    async def tier_written(self, card_no, tier, audit=None):
        """The desk wrote tier onto the card's info block (no value moved): nothing is pending if it is the hub's."""
        await self.write(lambda tx: tier_written_in(tx, card_no, tier), audit)

    async def tiers_on_cards(self, card_nos=None):
        """{card_no: tier its info block holds} of the cards in use whose hub tier is not written on them yet (of
        card_nos when given)."""
        rows = await self._all("SELECT card_no, tier_on_card FROM cards WHERE tier_on_card IS NOT NULL AND status=? "
                               "ORDER BY card_no", (str(CardStatus.ACTIVE),))
        return {no: tier for no, tier in rows if card_nos is None or no in card_nos}

    async def card_member(self, card_no):
        """The member number a card is issued to, or None."""
        return await self._one_value("SELECT member_no FROM cards WHERE card_no=?", (card_no,))

    async def report_loss(self, card_no, reason, actor, audit=None):
        """Blacklist a card as lost and keep why; return (CardLoss, blacklist version or None if listed already).

        ValueError when the card was replaced already.
        """
        def run(tx):
            stored = tx.sql_row(_LOSS_SELECT + "WHERE card_no=?", (card_no,))
            if stored is not None and stored[1] == REPLACED:
                new = tx.sql_row("SELECT new_card_no FROM replacements WHERE old_card_no=?", (card_no,))
                raise Refused("card %(card)d was replaced already: its balance is on card %(new_card)d", card=card_no,
                              new_card=new[0])
            status = tx.sql_row("SELECT status FROM cards WHERE card_no=?", (card_no,))
            if status is not None and status[0] in (CardStatus.RETURNED, CardStatus.WIPED):
                raise Refused("card %(card)d was returned at the desk: it holds nothing to lose", card=card_no)
            version = tx.blacklist_add(card_no, "lost: " + reason)
            current = version or tx.sql_row("SELECT MAX(version) FROM blacklist_versions")[0] or 0
            loss = CardLoss(card_no, LOST, reason, actor, tx.now, current, None)
            tx.sql_rowcount("DELETE FROM card_losses WHERE card_no=?", (card_no,))
            tx.sql_rowcount("INSERT INTO card_losses(%s) VALUES (?, ?, ?, ?, ?, ?, ?)"
                            % ", ".join(CardLoss._fields), loss)
            return loss, version
        return await self.write(run, audit)

    async def report_found(self, card_no, reason, audit=None):
        """Un-report a lost card not yet replaced: off the blacklist; return the version (None: not listed).

        ValueError when the card is not reported lost (or was replaced).
        """
        def run(tx):
            stored = tx.sql_row(_LOSS_SELECT + "WHERE card_no=?", (card_no,))
            if stored is None or stored[1] != LOST:
                if stored is None:
                    raise Refused("card %(card)d is not reported lost", card=card_no)
                raise Refused("card %(card)d is %(state)s", card=card_no, state=Word(stored[1]))
            tx.sql_rowcount("UPDATE card_losses SET state=?, found_at=? WHERE card_no=?", (FOUND, tx.now, card_no))
            return tx.blacklist_remove(card_no, "found: " + reason)
        return await self.write(run, audit)

    async def card_loss(self, card_no):
        """The CardLoss of a card, or None when it was never reported lost."""
        return await self._one_as(CardLoss, _LOSS_SELECT + "WHERE card_no=?", (card_no,))

    async def lost_cards(self):
        """[CardLoss] of the cards reported lost and not yet found or replaced, by card."""
        return [CardLoss(*r) for r in await self._all(_LOSS_SELECT + "WHERE state=? ORDER BY card_no", (LOST,))]
