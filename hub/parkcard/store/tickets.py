"""The store's ticket and gate methods, one SQL for both backends (a mixin beside reads.SharedMethods).

Ticket products, tickets sold, gate configs, the passages ingest wrote and
the areas' daily resets (migration 17). Rows cross as parkcard.store.rows
types. The SQL stays in the dialect SQLite and PostgreSQL both speak.
"""

from protocol import record as R

from parkcard.domain import ledger
from parkcard.domain.shifts import CASH
from parkcard.store.errors import Refused

from parkcard.store.rows import (GateRow, StartedTicketSale, StoredPassage, Ticket, TicketProduct, TicketSaleRequest,
                                 TicketUse)
from parkcard.store.shifts import link_to_shift, ticket_op_id

_PRODUCT_SELECT = "SELECT %s FROM ticket_products " % ", ".join(TicketProduct._fields)
_TICKET_SELECT = "SELECT %s FROM tickets " % ", ".join(Ticket._fields)
_GATE_SELECT = "SELECT %s FROM gates " % ", ".join(GateRow._fields)
_PASSAGE_KINDS_SQL = ", ".join(str(k) for k in R.PASSAGE_KINDS)
TICKET_PENDING = "pending"
TICKET_WRITTEN = "written"
TICKET_FAILED = "failed"
PASSAGE_TIME_END_S = 1 << 32    # past every passage time (epoch seconds on the wire are 4 bytes)


def _gate(row):
    products = tuple(int(p) for p in row[6].split(",") if p)
    return GateRow(*row[:6], products, row[7])


def _ticket(row):
    return Ticket(*row[:3], bytes(row[3]), *row[4:])


class TicketMethods:
    """The ticket and gate methods of interface.Store (a mixin: the store provides _all, _one and write)."""

    async def add_ticket_product(self, name, rule, audit=None):
        """Create a ticket product from a parkcard.domain.tickets.ProductRule; return its id. ValueError if the
        name is taken."""
        def run(tx):
            if tx.sql_row("SELECT 1 FROM ticket_products WHERE name=?", (name,)) is not None:
                raise Refused("a ticket product named %(name)r exists already", name=name)
            return tx.sql_row("INSERT INTO ticket_products(name, type, area, valid_days, entries, day_limit, "
                              "included_min, interval_min, interval_price_cents, price_cents, created_at) "
                              "VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING id", (name, *rule, tx.now))[0]
        return await self.write(run, audit)

    async def ticket_products(self, product_id=None):
        """Return [TicketProduct] by id (or only product_id's)."""
        where, params = ("WHERE id=? ", (product_id,)) if product_id is not None else ("", ())
        return [TicketProduct(*r) for r in await self._all(_PRODUCT_SELECT + where + "ORDER BY id", params)]

    async def add_ticket(self, product_id, card_no, uid, from_day, to_day, entries, price_cents, actor, audit=None,
                         desk_terminal_id=None, shift_owner=None):
        """Record a ticket sold onto a card, pending until the desk writes it; return its serial.

        desk_terminal_id: the desk it is sold at; the sale joins that desk's open shift (paid in cash) in the
        same transaction (parkcard.store.shifts.NoOpenShift when there is none, ShiftOfAnother when shift_owner did
        not open it)."""
        def run(tx):
            serial = tx.sql_row("INSERT INTO tickets(product_id, card_no, uid, from_day, to_day, entries, "
                                "price_cents, state, sold_at, sold_by) VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING serial",
                                (product_id, card_no, bytes(uid), from_day, to_day, entries, price_cents,
                                 TICKET_PENDING, tx.now, actor))[0]
            if desk_terminal_id is not None:
                link_to_shift(tx, ticket_op_id(serial), desk_terminal_id, CASH, shift_owner)
            return serial
        return await self.write(run, audit)

    async def settle_ticket(self, serial, written, audit=None):
        """Mark a pending ticket written or failed; return False when it was not pending.

        Written, its price (paid in cash at the desk) is booked in the same transaction (ledger.ticket_sale);
        failed, no money moves."""
        def run(tx):
            row = tx.sql_row("SELECT price_cents FROM tickets WHERE serial=? AND state=?", (serial, TICKET_PENDING))
            if row is None:
                return False
            sale_tx = tx.post(None, ledger.TX_TICKET_SALE, ledger.ticket_sale(row[0])) if written and row[0] else None
            return tx.sql_rowcount("UPDATE tickets SET state=?, sale_tx=? WHERE serial=? AND state=?", (
                TICKET_WRITTEN if written else TICKET_FAILED, sale_tx, serial, TICKET_PENDING)) == 1
        return await self.write(run, audit)

    async def tickets(self, card_no=None):
        """Return [Ticket] by serial (or only card_no's)."""
        where, params = ("WHERE card_no=? ", (card_no,)) if card_no is not None else ("", ())
        return [_ticket(r) for r in await self._all(_TICKET_SELECT + where + "ORDER BY serial", params)]

    async def request_ticket_sale(self, desk_terminal_id, product_id, card_no, start_day, actor, audit=None,
                                  replace=False, roles=()):
        """Queue a ticket sale for the running hub at a desk terminal; return the request id (replace: it may
        overwrite a ticket still valid on the card; actor and roles: the operator asking, as whom the hub sells)."""
        return await self.write(lambda tx: tx.sql_row(
            "INSERT INTO ticket_sale_requests(desk_terminal_id, product_id, card_no, start_day, actor, created_at, "
            "replace_valid, roles) VALUES (?,?,?,?,?,?,?,?) RETURNING id",
            (desk_terminal_id, product_id, card_no, start_day, actor, tx.now, 1 if replace else 0,
             " ".join(roles)))[0], audit)

    async def start_ticket_sales(self):
        """Claim the queued ticket sales: [StartedTicketSale], oldest first, marked started."""
        def run(tx):
            # Claimed in the transaction that reads them: a request the CLI cancels meanwhile is not started.
            claimed = []
            while True:
                row = tx.sql_row(
                    "UPDATE ticket_sale_requests SET started_at=? WHERE id=(SELECT MIN(id) FROM ticket_sale_requests "
                    "WHERE started_at IS NULL AND cancelled_at IS NULL) "
                    "RETURNING id, desk_terminal_id, product_id, card_no, start_day, actor, replace_valid, roles",
                    (tx.now,))
                if row is None:
                    return claimed
                claimed.append(StartedTicketSale(*row[:6], bool(row[6]), tuple(row[7].split())))
        return await self.write(run)

    async def cancel_ticket_sale(self, request_id):
        """Cancel a queued ticket sale the hub has not started; return False if it started or ended already."""
        return await self.write(lambda tx: tx.sql_rowcount(
            "UPDATE ticket_sale_requests SET cancelled_at=? WHERE id=? AND started_at IS NULL AND finished_at IS NULL",
            (tx.now, request_id)) == 1)

    async def finish_ticket_sale(self, request_id, serial=None, error=None):
        """Record how a queued ticket sale ended: the ticket's serial (if one was recorded) and the error, if any."""
        await self.write(lambda tx: tx.sql_rowcount(
            "UPDATE ticket_sale_requests SET finished_at=?, serial=?, error=? WHERE id=?",
            (tx.now, serial, error, request_id)))

    async def ticket_sale_request(self, request_id):
        """Return the TicketSaleRequest of a queued ticket sale, or None."""
        return await self._one_as(TicketSaleRequest, "SELECT started_at, finished_at, serial, error "
                                  "FROM ticket_sale_requests WHERE id=?", (request_id,))

    async def set_gate(self, terminal_id, direction, area, reentry, reentry_min, reset_s, products, audit=None):
        """Set a gate terminal's config (products: ids); return its new version (1 for a new gate)."""
        listed = ",".join(str(p) for p in sorted(set(products)))

        def run(tx):
            row = tx.sql_row("SELECT version FROM gates WHERE terminal_id=?", (terminal_id,))
            version = (row[0] if row else 0) + 1
            if row is None:
                tx.sql_rowcount("INSERT INTO gates(terminal_id, direction, area, reentry, reentry_min, reset_s, "
                                "products, version) VALUES (?,?,?,?,?,?,?,?)",
                                (terminal_id, direction, area, reentry, reentry_min, reset_s, listed, version))
            else:
                tx.sql_rowcount("UPDATE gates SET direction=?, area=?, reentry=?, reentry_min=?, reset_s=?, "
                                "products=?, version=? WHERE terminal_id=?",
                                (direction, area, reentry, reentry_min, reset_s, listed, version, terminal_id))
            return version
        return await self.write(run, audit)

    async def gates(self, terminal_id=None):
        """Return [GateRow] by terminal (or only terminal_id's)."""
        where, params = ("WHERE terminal_id=? ", (terminal_id,)) if terminal_id is not None else ("", ())
        return [_gate(r) for r in await self._all(_GATE_SELECT + where + "ORDER BY terminal_id", params)]

    async def passage_counts(self):
        """[(area, kind, n)] of the passages after each area's last reset."""
        return [tuple(r) for r in await self._all(
            "SELECT p.area, p.kind, COUNT(*) FROM passages p LEFT JOIN area_resets r ON r.area = p.area "
            "WHERE p.time_s >= COALESCE(r.at_s, 0) GROUP BY p.area, p.kind ORDER BY p.area, p.kind")]

    async def passages_per_hour(self, since_s, until_s=PASSAGE_TIME_END_S, hour_shift_s=0):
        """[(terminal_id, hour start (epoch s), kind, n)] of the passages in [since_s, until_s).

        hour_shift_s (0..3599): hours start this long after a UTC hour (a park at UTC+05:30: 1800)."""
        return [tuple(r) for r in await self._all(
            "SELECT terminal_id, ((time_s - ?) / 3600) * 3600 + ? AS hour, kind, COUNT(*) FROM passages "
            "WHERE time_s >= ? AND time_s < ? GROUP BY terminal_id, hour, kind ORDER BY terminal_id, hour, kind",
            (hour_shift_s, hour_shift_s, since_s, until_s))]

    async def refusals_by_reason(self, since_s, until_s=PASSAGE_TIME_END_S):
        """[(reason code, n)] of the gate refusals in [since_s, until_s)."""
        return [tuple(r) for r in await self._all(
            "SELECT reason, COUNT(*) FROM passages WHERE kind=? AND time_s >= ? AND time_s < ? GROUP BY reason "
            "ORDER BY reason", (R.KIND_REFUSAL, since_s, until_s))]

    async def ticket_uses(self, card_no=None):
        """[TicketUse] of every written ticket (or only card_no's), by serial: the entries its card made with its
        product from the second of the sale (a passage's time is whole seconds) until a later ticket of that
        product was written over it; each entry counts for one ticket."""
        where, params = ("AND t.card_no = ? ", (card_no,)) if card_no is not None else ("", ())
        return [TicketUse(*r) for r in await self._all(
            "SELECT t.serial, t.product_id, t.entries, t.price_cents, COUNT(s.record_id) FROM tickets t "
            "LEFT JOIN passages s ON s.card_no = t.card_no AND s.product = t.product_id AND s.kind = ? "
            "AND s.time_s + 1 > t.sold_at AND NOT EXISTS (SELECT 1 FROM tickets n WHERE n.card_no = t.card_no "
            "AND n.product_id = t.product_id AND n.serial > t.serial AND n.state = ? AND s.time_s + 1 > n.sold_at) "
            "WHERE t.state = ? " + where + "GROUP BY t.serial, t.product_id, t.entries, t.price_cents "
            "ORDER BY t.serial", (R.KIND_ENTRY, TICKET_WRITTEN, TICKET_WRITTEN, *params))]

    async def tickets_by_product(self):
        """[(product id, tickets written, passages entered)] of every product."""
        return [tuple(r) for r in await self._all(
            "SELECT p.id, (SELECT COUNT(*) FROM tickets t WHERE t.product_id = p.id AND t.state = ?), "
            "(SELECT COUNT(*) FROM passages s WHERE s.product = p.id AND s.kind = ?) FROM ticket_products p "
            "ORDER BY p.id", (TICKET_WRITTEN, R.KIND_ENTRY))]

    async def area_resets(self):
        """{area: epoch s of its last daily reset}."""
        return dict(await self._all("SELECT area, at_s FROM area_resets ORDER BY area"))

    async def reset_areas(self, areas, at_s, actor, audit=None):
        """Start the areas' occupancy again from at_s (the nightly reset: everyone counts as gone)."""
        def run(tx):
            for area in areas:
                tx.sql_rowcount("INSERT INTO area_resets(area, at_s, by_actor) VALUES (?,?,?) ON CONFLICT (area) "
                                "DO UPDATE SET at_s=excluded.at_s, by_actor=excluded.by_actor", (area, at_s, actor))
            return len(areas)
        return await self.write(run, audit)

    async def stored_passages(self):
        """[StoredPassage] of every passage record with its passages row (facts None when it has none), by id."""
        rows = await self._all(
            "SELECT r.id, r.terminal_id, r.raw, r.status, p.kind, p.area, p.reason, p.product, p.time_s "
            "FROM records r LEFT JOIN passages p ON p.record_id = r.id WHERE r.kind IN (%s) ORDER BY r.id"
            % _PASSAGE_KINDS_SQL)
        return [StoredPassage(r[0], r[1], bytes(r[2]), r[3], tuple(r[4:]) if r[4] is not None else None)
                for r in rows]
