"""The pos role: the vendor keys an item and quantity or an amount, the visitor taps (DESIGN.md, Terminals
and roles).

A booth keeps its merchant's price list and discount rules (terminal/prices.py, SPEC.md §7): it takes
T_PRICE_LIST and T_DISCOUNTS from the hub while it is a booth, and its T_SYNC names the versions it
holds, so the hub sends what changed. Only a booth imports them.
"""

from protocol import frames, pricing
from protocol.price_list import LIST_FREE_AMOUNT, parse_price_list
from protocol.pricing import FREE_AMOUNT
from protocol.sale_line import sale_line
from terminal.app import Role as _Role
from terminal import atomic
from terminal import journal as jr
from terminal.journal import COMMITTED
from terminal import prices as pr
from terminal.spend import RulesTail
from terminal import wallet as w
from terminal.shift import Shift
from terminal.ui import BEEP_APPROVED, money

AMOUNT_DIGITS_MAX = 7
_QUANTITY_DIGITS = 2            # pricing.QUANTITY_MAX is 99

_KEY_ENTER = "#"
_KEY_CLEAR = "*"
_KEY_BALANCE = "A"
_KEY_ITEM = "C"                 # the digits keyed are an item code
_KEY_MORE = "B"                 # this line goes in the basket, key the next one ('#' ends the last line)
_KEY_STAFF = "D"                # alone: the shift's and today's totals, and a staff card opens or closes the shift;
                                # after digits: reverse that sale seq of the open shift (SPEC.md §4.14, §4.15)
_DONE = ()                      # read_sale's answer to '#' on an empty entry after a 'B' line: tap to pay
_NO_DISCOUNT = pricing.Discounts()
# Why a keyed line cannot be sold, for the vendor.
_REFUSED_TEXT = {"free_amount": "Key item + C", "bad_line": "Bad quantity", "over_max": "Over limit"}


class Role(_Role):
    """Keyed sales and tap-to-see-balance on the 4x4 keypad."""

    def __init__(self, app):
        _Role.__init__(self, app)
        self.prices = self.rules = self.shift = None
        self._basket_open = self._more = False
        runtime = app.runtime
        self._spend_rules = RulesTail(app.wallet, runtime)
        if runtime is None:
            return                  # a terminal without a link: keyed amounts only
        self.shift = Shift(runtime.board.data_dir() + "/shift")
        if self.shift.behind(app.wallet.journal):
            from terminal import shift_recovery     # a sale journalled just before a power cut is counted now
            shift_recovery.recover(self.shift, app.wallet.journal)
        folder = runtime.board.data_dir() + "/prices"
        try:
            self.prices = pr.PriceList(folder)
        except pr.PricesCorrupt:
            atomic.remove(folder + "/prices")   # damaged: version 0, and the hub sends the whole list
            self.prices = pr.PriceList(folder)
        self.rules = pr.Rules(folder)
        sync = runtime.sync
        sync.handle(frames.T_PRICE_LIST, self._on_price_list)
        sync.handle(frames.T_DISCOUNTS, self._on_discounts)
        sync.handle(frames.T_SHIFTS, self._on_shifts)
        sync.handle(frames.T_STAFF, self._on_staff)
        sync.prices_versions = self._versions
        if sync.client is not None and sync.client.connected:
            sync.ask_sync()         # made a booth while linked: the connect's T_SYNC named no price list

    def _versions(self):
        return pr.sync_versions(self.prices, self.rules)

    def _on_price_list(self, frame):
        sync = self.app.runtime.sync
        sync.state.save()           # the counter is spent: a replayed chunk stays refused after a reboot
        try:
            self.prices.take(parse_price_list(frame.body))
        except OSError as exc:      # flash full or failing: the list in force stays, the hub sends it again
            raise pr.PricesError("flash", "price list not stored: %s" % exc)

    def _on_discounts(self, frame):
        self.app.runtime.sync.state.save()
        try:
            self.rules.take(frame.body)
        except OSError as exc:
            raise pr.PricesError("flash", "discount rules not stored: %s" % exc)

    def _on_shifts(self, frame):
        required = frames.parse_shifts(frame.body)
        if required == self.shift.required:
            return      # sent at every sync; nothing changes, so neither can this frame replayed after a reboot
        self.app.runtime.sync.state.save()
        self.shift.required = required
        self.shift.save()

    def _on_staff(self, frame):
        from protocol.staff_list import parse_staff     # when the list comes only
        zone, cards = parse_staff(frame.body)
        if self.shift.holds_staff(zone, cards):
            # Sent at every sync. The counter is saved only by a frame that changes something: a frame replayed
            # after a reboot is then one the booth took with nothing changed since, so it changes nothing either.
            return
        self.app.runtime.sync.state.save()
        try:
            self.shift.take_staff(zone, cards)
        except OSError as exc:      # the list in force stays; the hub sends it again after the next config
            raise pr.PricesError("flash", "staff list not stored: %s" % exc)

    def close(self):
        """No longer a booth: the price list downlinks are refused again, its consumption rules go."""
        self._spend_rules.close()
        if self.prices is None:
            return
        sync = self.app.runtime.sync
        sync.handle(frames.T_PRICE_LIST, None)
        sync.handle(frames.T_DISCOUNTS, None)
        sync.handle(frames.T_SHIFTS, None)
        sync.handle(frames.T_STAFF, None)
        sync.prices_versions = None
        self.prices.close()

    async def serve(self, cfg):
        """One step of the loop: one sale, by the consumption rules of the config in force."""
        self._spend_rules.take(cfg)
        return await self.sale_once()

    async def read_sale(self):
        """Collect one line from the keypad: (item, category, quantity, unit cents, name), None when cleared
        on an empty entry. Digits then '#' are a keyed amount; digits then 'C' an item code, whose
        quantity (1..99, default 1) the digits after it set, and '#' ends it."""
        app = self.app
        number = digits = 0
        item = None
        self._more = False
        if not self._basket_open:
            app.ui.message("Amount", money(0))        # a basket's running total stays on the display until a key
        while True:
            key = app.keypad.get_key()
            if key is None:
                await app.poll()
                continue
            if key == _KEY_ENTER and item is not None:
                return item.code, item.category, number or 1, item.price_cents, item.name
            if key == _KEY_ENTER and number > 0:
                return FREE_AMOUNT, 0, 1, number, None
            if key == _KEY_ENTER and number == 0 and item is None and self._basket_open:
                return _DONE
            if key == _KEY_MORE and item is not None:
                self._more = True
                return item.code, item.category, number or 1, item.price_cents, item.name
            if key == _KEY_CLEAR:
                if number == 0 and item is None:
                    return None
                number, digits, item = 0, 0, None
            elif key == _KEY_ITEM and item is None and number > 0 and self.prices is not None and self.prices.count:
                item = self._item(number)
                number = digits = 0
                if item is None:
                    await app.pause()
            elif key == _KEY_BALANCE and number == 0 and item is None:
                await self.show_balance()
            elif key == _KEY_STAFF and item is None and self.shift is not None and not self._basket_open:
                if number:
                    await self.reverse(number)
                else:
                    await self.staff_tap()
                number = digits = 0
            elif "0" <= key <= "9" and digits < (_QUANTITY_DIGITS if item is not None else AMOUNT_DIGITS_MAX):
                number = number * 10 + ord(key) - 48
                digits += 1
            if item is not None:
                quantity = number or 1
                app.ui.message(item.name, "%d x %s" % (quantity, money(item.price_cents)))
            elif key != _KEY_ITEM or not number:
                app.ui.message("Amount", money(number))

    def _item(self, code):
        """The listed, sold item with this code, or None with the reason on the display."""
        found = self.prices.lookup(code)
        if found is None:
            self.app.ui.message("No item %d" % code, "Key again")
        elif not found.active:
            self.app.ui.message(found.name, "Not sold")
            found = None
        return found

    def _member_only(self, lines):
        """True when a line is an item the list sells to members only (SPEC.md §7.1 flag bit 1, §3.6 rule 11)."""
        if self.prices is None or not self.prices.version:
            return False
        for code, _c, _q, _u in lines:
            found = self.prices.lookup(code) if code else None
            if found is not None and found.member_only:
                return True
        return False

    async def show_balance(self):
        """Tap-to-see-balance: wait for a card and show what it holds."""
        app = self.app
        app.ui.message("Balance", "Tap card")
        result = await app.wait_for(app.wallet.balance)
        if result is not None:
            if result.ok:       # the tap to see a balance
                app.ui.message("Card %d" % result.card_no, "Balance " + money(result.balance_cents))
                app.ui.buzzer.play(BEEP_APPROVED)
            else:
                app.ui.result(result)
            await app.pause()

    async def staff_tap(self):
        """Show this shift's and today's count and total; a staff card tapped then opens or closes the shift."""
        app = self.app
        shift = self.shift
        wallet = app.wallet
        from terminal import reversal as rv     # staff cards are read here and at a reversal only
        day = shift.today(wallet.clock())
        app.ui.message("Shift %d %s" % (shift.totals.sales, money(shift.totals.net_cents())) if shift.is_open()
                       else "No shift open", "Day %d %s" % (day.sales, money(day.net_cents())))
        staff = await app.wait_for(lambda: rv.read_staff(wallet))
        if staff is None:
            return
        if not staff.ok:
            app.ui.message("REFUSED", "Not staff card" if staff.reason == rv.NOT_STAFF else staff.reason)
        elif shift.is_open() and staff.card_no != shift.staff_no:
            app.ui.message("Shift open", "Staff %d" % shift.staff_no)
        elif not shift.is_open() and not shift.allows(staff.card_no):
            app.ui.message("REFUSED", "Not staff here")     # no staff card of this booth's merchant (SPEC.md §5.11)
        else:
            try:
                if shift.is_open():
                    totals = shift.totals
                    shift.close(wallet, staff.uid, wallet.clock())
                    app.ui.message("Shift closed", "%d %s" % (totals.sales, money(totals.net_cents())))
                else:
                    shift.open(wallet, staff.info, staff.uid, wallet.clock())
                    app.ui.message("Shift open", "Staff %d" % staff.card_no)
            except (OSError, jr.JournalFull):
                app.ui.message("REFUSED", "Memory full")
        await app.pause()

    async def reverse(self, seq):
        """Give sale seq of the open shift back to its card, once the shift's staff card authorised it."""
        app = self.app
        shift = self.shift
        wallet = app.wallet
        from terminal import reversal as rv     # loaded only when a sale is reversed
        sale = rv.shift_sale(shift, seq)
        refused = ("No sale %d" % seq, "in this shift") if sale is None else \
            ("Sale %d" % seq, "Reversed already") if seq in shift.reversed else \
            ("Reversals full", "Close the shift") if shift.reversals_full() else None
        if refused is not None:
            app.ui.message(refused[0], refused[1])
            await app.pause()
            return
        app.ui.message("Reverse %s" % money(sale[2]), "Tap staff card")
        staff = await app.wait_for(lambda: rv.read_staff(wallet))
        if staff is None or not staff.ok or staff.card_no != shift.staff_no:
            app.ui.message("REFUSED" if staff is not None else "Cancelled", "Not shift staff" if staff else "")
            await app.pause()
            return
        app.ui.message("Reverse %s" % money(sale[2]), "Tap card of sale")
        wallet.shift_tag = shift.tag
        result = await app.wait_for(lambda: rv.reverse(wallet, sale, staff.card_no, staff.uid, wallet.clock()))
        open_seq = 0
        while result is not None and result.reason == w.UNCERTAIN:
            open_seq = result.seq
            app.ui.result(result)       # "Tap card again": the re-tap settles this reversal, never a second one
            result = await app.wait_for(lambda: rv.reverse(wallet, sale, staff.card_no, staff.uid, wallet.clock(),
                                                           open_seq))
        if result is None and open_seq:
            shift.mark_reversed(seq)    # its outcome is open: the card's next tap settles it, no second reversal
            shift.save()
            app.ui.message("Cancelled")
        elif result is None:
            app.ui.message("Cancelled")
        elif result.ok:
            shift.count(result, wallet.clock(), reversal=True, sale_seq=seq)
            app.ui.message("REVERSED " + money(result.amount_cents), "Balance " + money(result.balance_cents))
        else:
            app.ui.result(result)
        await app.pause()
        if result is not None and result.ok:
            shift.save()                # after the screen: the customer does not wait for the flash

    async def read_basket(self):
        """Collect up to pricing.LINES_MAX lines before one tap (SPEC.md §7.3): an item line that ends with 'B'
        adds the next line, one that ends with '#' (or '#' on an empty entry) closes the basket.
        None when '*' clears an empty entry: the whole basket is dropped."""
        lines = []
        names = []
        app = self.app
        while len(lines) < pricing.LINES_MAX:
            self._basket_open = bool(lines)
            line = await self.read_sale()
            if line is None:
                self._basket_open = False
                return None
            if line is _DONE:
                break
            item, category, quantity, unit_cents, name = line
            lines.append((item, category, quantity, unit_cents))
            names.append(name)
            if not self._more:
                break
            total = 0
            for _i, _c, q, u in lines:
                total += q * u
            app.ui.message("Basket %s" % money(total), "%d/%d next, # pay" % (len(lines), pricing.LINES_MAX))
        self._basket_open = False
        return lines, names

    async def sale_once(self):
        """One sale: a basket of items and quantities (or an amount) keyed, then a tap; the card's tier
        prices it, and each line goes to the journal with the debit (SPEC.md §4.11)."""
        app = self.app
        app.ui.idle("pos")
        basket = await self.read_basket()
        if basket is None:
            return None
        lines, names = basket
        shift = self.shift
        if shift is not None and shift.required and not shift.is_open():
            app.ui.message("Shift closed", "Tap staff card")   # the hub's setting: no sale without a shift
            await app.pause()
            return None
        item = lines[0][0]
        name = names[0] if len(lines) == 1 else "Basket"
        # A keyed amount where the merchant forbids them: only when its list says so (no list: as ever).
        free = self.prices is None or not self.prices.version or bool(self.prices.flags & LIST_FREE_AMOUNT)
        rules = self.rules
        try:
            pricing.price_basket(rules or _NO_DISCOUNT, 0, lines, free)     # what no tier can change
        except pricing.Refused as exc:
            app.ui.message("REFUSED", _REFUSED_TEXT.get(exc.reason, exc.reason))
            await app.pause()
            return None
        gross = 0
        for _i, _c, q, u in lines:
            gross += q * u
        discount = [0]
        listed = self.prices is not None and self.prices.version

        def price(info):
            priced = pricing.price_basket(rules or _NO_DISCOUNT, info.tier, lines, free)
            discount[0] = priced.discount_cents
            tier[0] = info.tier
            return priced.pay_cents, priced.discount_cents

        def journal_lines(sale, journal, record_mac):
            # The lines take the seqs from the debit's up; the debit goes above them (SPEC.md §4.11).
            count = len(lines)
            sale.seq += count
            priced = pricing.price_basket(rules or _NO_DISCOUNT, tier[0], lines, free)
            for index in range(count):
                code, _category, quantity, unit_cents = lines[index]
                line = sale_line(sale, code, quantity, quantity * unit_cents, priced.line_discounts[index], tier[0],
                                 index, count, self.prices.version, rules.version if rules is not None else 0)
                journal.append(line.seq, line.time_s, line.encode(record_mac))
                journal.mark(line.seq, COMMITTED)
        tier = [0]
        app.ui.message("Pay " + money(gross), "Tap card")
        wallet = app.wallet
        members = self._member_only(lines)
        hook = price if rules is not None or listed else None
        wallet.sale_lines = journal_lines if listed else None
        wallet.shift_tag = shift.tag if shift is not None and shift.is_open() else 0
        try:
            result = await app.wait_for(lambda: wallet.debit(gross, item, price=hook, member_only=members))
            while result is not None and result.reason == w.UNCERTAIN:
                # "Tap card again": the re-tap settles this sale, it does not start a new one (SPEC.md §3.5).
                app.ui.result(result)
                seq = result.seq
                result = await app.wait_for(lambda: wallet.debit(gross, item, retry_seq=seq, price=hook,
                                                                 member_only=members))
        finally:
            wallet.sale_lines = None
        if result is None:
            app.ui.message("Cancelled")
            return None
        if not result.ok:
            return await app.show(result)
        if shift is not None:
            shift.count(result, wallet.clock())    # in memory: saved once the visitor has seen "approved"
        if discount[0]:
            # What the member saved, before the usual approved screen (SPEC.md §7.3).
            app.ui.message("%s %s" % (name or "List", money(gross)), "Discount -%s" % money(discount[0]))
            await app.pause()
        await self.approved(result)
        if shift is not None:
            shift.save()
        return result

    async def approved(self, result):
        """The approved screen with the sale's seq, which staff and customers quote for a reversal (SPEC.md §4.15)."""
        app = self.app
        app.taps += 1
        balance = money(result.balance_cents)
        line2 = "#%d Bal %s" % (result.seq, balance)
        app.ui.message("APPROVED " + money(result.amount_cents), line2 if len(line2) <= 16 else
                       "#%d %s" % (result.seq, balance))
        app.ui.buzzer.play(BEEP_APPROVED)
        await app.pause()
