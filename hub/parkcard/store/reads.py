"""The store's reads and small writes whose SQL every backend runs as written: one definition of each.

A backend's store mixes SharedMethods in and provides `_all(sql, params)` and
`_one(sql, params)` (rows as tuples; `?` placeholders, or `:name` ones with a
dict, which a backend that numbers its parameters rewrites), `write(fn,
audit)` and `_close_one(tx, merchant_id, start_s, end_s)` (a settlement's close
inside a write: (settlement id, audit details or None)); so every backend answers with the same rows of parkcard.store.rows by
construction. The SQL here stays in the dialect both SQLite and PostgreSQL
speak (casts where PostgreSQL's types differ, such as SUM of BIGINT).
"""

from protocol import record as R

from parkcard.domain import accounts
from parkcard.domain.lifecycle import RecordStatus
from parkcard.money import DEFAULT_CURRENCY
from parkcard.store import settlement as S
from parkcard.store.errors import NotIssued, Refused
from parkcard.store.rows import (AdminCard, Alarm, ApiKey, Attempt, AuditAnchor, BlacklistChange, BlacklistEntry,
                                 BoothRecord, Card, CardRequest, CardUse, CardWriteRequest, Conflict, IdempotentResponse,
                                 Liabilities, Merchant, Operator, PendingCommand,
                                 Quarantined, Refund, SalesDay, Settlement, StoreCounts, StoredRecord, Terminal, TerminalCommand,
                                 TerminalFlags, TerminalSales, TopUpDay)

TERMINAL_SELECT = "SELECT %s FROM terminals " % ", ".join(Terminal._fields)
_ADMIN_CARD_SELECT = "SELECT %s FROM admin_cards " % ", ".join(AdminCard._fields)
_API_KEY_SELECT = "SELECT %s FROM api_keys " % ", ".join(ApiKey._fields)
_OPERATOR_SELECT = "SELECT %s FROM operators " % ", ".join(Operator._fields)
# The columns update_operator may set: fixed names of this schema, never input.
_OPERATOR_CHANGES = ("password_hash", "roles", "active", "display_name", "last_login_at", "password_changed_at")
_QUARANTINE_SELECT = "SELECT %s FROM quarantine " % ", ".join(Quarantined._fields)
# StoreCounts' fields are the table names: fixed names of this schema, never input.
_COUNTS_SELECT = "SELECT %s" % ", ".join("(SELECT COUNT(*) FROM %s)" % t for t in StoreCounts._fields)


def _sales_sums(merchant_id):
    """The sales and refunds sums, the count and the FROM/WHERE of the sales reads (one merchant's, if given)."""
    return ("CAST(SUM(CASE WHEN r.kind=:sale THEN r.amount_cents ELSE 0 END) AS BIGINT), "
            "CAST(SUM(CASE WHEN r.kind IN (:refund, :reversal) THEN r.amount_cents ELSE 0 END) AS BIGINT), COUNT(*) "
            "FROM records r JOIN terminals t ON t.id = r.terminal_id JOIN merchants m ON m.id = t.merchant_id "
            "WHERE r.status=:applied AND r.kind IN (:sale, :refund, :reversal) AND r.time_s>=:start AND r.time_s<:end "
            + ("" if merchant_id is None else "AND t.merchant_id=:merchant "))


def _sales_params(start_s, end_s, merchant_id, **more):
    """The parameters of _sales_sums."""
    return {"sale": S.SETTLED_KINDS[0], "refund": S.SETTLED_KINDS[1], "reversal": S.SETTLED_KINDS[2],
            "applied": RecordStatus.APPLIED,
            "start": start_s, "end": end_s, "merchant": merchant_id, **more}


class SharedMethods:
    """The methods of interface.Store that both backends run with the same SQL (a mixin)."""

    async def _one_as(self, make, sql, params=()):
        """The one row sql reads made by make (a store.rows NamedTuple, or a function of its columns), or None."""
        row = await self._one(sql, params)
        return None if row is None else make(*row)

    async def _one_value(self, sql, params=()):
        """The first column of the one row sql reads, or None when it reads none."""
        row = await self._one(sql, params)
        return None if row is None else row[0]

    async def audit(self, actor, action, **details):
        """Append an operator action to the audit log in a transaction of its own (anchored)."""
        await self.write(lambda tx: tx.audit(actor, action, **details))

    async def audit_anchor(self):
        """Return the audit log's head as the database knows it (AuditAnchor), or None."""
        return await self._one_as(AuditAnchor, "SELECT seq, hash FROM audit_anchor WHERE id=1")

    async def park_currency(self, park_id=1):
        """Return the park's ISO 4217 currency code (the default until the park is set up)."""
        row = await self._one("SELECT currency FROM parks WHERE id=?", (park_id,))
        return row[0] if row else DEFAULT_CURRENCY

    async def park_opening_hours(self, park_id=1):
        """Return the park's (opens_min, closes_min) after local midnight, or None when none are set."""
        row = await self._one("SELECT opens_min, closes_min FROM parks WHERE id=?", (park_id,))
        return None if row is None or row[0] is None else (row[0], row[1])

    async def set_park_opening_hours(self, park_id, opens_min, closes_min, audit=None):
        """Set (or with None, None clear) the park's opening hours, creating the park; True if they changed."""
        def run(tx):
            before = tx.sql_row("SELECT opens_min, closes_min FROM parks WHERE id=?", (park_id,))
            if before is None:
                tx.sql_rowcount("INSERT INTO parks(id, name) VALUES (?, ?)", (park_id, "park %d" % park_id))
            elif tuple(before) == (opens_min, closes_min):
                return False
            tx.sql_rowcount("UPDATE parks SET opens_min=?, closes_min=? WHERE id=?", (opens_min, closes_min, park_id))
            return True
        return await self.write(run, audit)

    async def park_time_zone(self, park_id=1):
        """Return the park's IANA time zone name, or None when none is set (the park runs on UTC)."""
        return await self._one_value("SELECT time_zone FROM parks WHERE id=?", (park_id,))

    async def set_park_time_zone(self, park_id, time_zone, audit=None):
        """Set the park's IANA time zone, creating the park; True if it changed."""
        def run(tx):
            before = tx.sql_row("SELECT time_zone FROM parks WHERE id=?", (park_id,))
            if before is None:
                tx.sql_rowcount("INSERT INTO parks(id, name) VALUES (?, ?)", (park_id, "park %d" % park_id))
            elif before[0] == time_zone:
                return False
            tx.sql_rowcount("UPDATE parks SET time_zone=? WHERE id=?", (time_zone, park_id))
            return True
        return await self.write(run, audit)

    async def sales_by_day(self, start_s, end_s, offset_s=0, merchant_id=None):
        """Return [SalesDay] of applied sales and refunds with time in [start_s, end_s), by day then merchant.

        A day is (time_s + offset_s) // 86400: offset_s is the park's UTC offset, so days are the park's.
        """
        return [SalesDay(*r) for r in await self._all(
            "SELECT (r.time_s + :offset) / 86400 AS day, t.merchant_id, m.name, " + _sales_sums(merchant_id)
            + "GROUP BY (r.time_s + :offset) / 86400, t.merchant_id, m.name ORDER BY 1, 2",
            _sales_params(start_s, end_s, merchant_id, offset=offset_s))]

    async def sales_by_terminal(self, start_s, end_s, merchant_id=None):
        """Return [TerminalSales] of applied sales and refunds with time in [start_s, end_s), by terminal."""
        return [TerminalSales(*r) for r in await self._all(
            "SELECT t.id, t.name, t.merchant_id, m.name, " + _sales_sums(merchant_id)
            + "GROUP BY t.id, t.name, t.merchant_id, m.name ORDER BY 1", _sales_params(start_s, end_s, merchant_id))]

    async def booth_records(self, start_s, end_s, merchant_id=None):
        """Return [BoothRecord] of the sales, refunds and sale lines with time in [start_s, end_s) (one merchant's,
        if given), by terminal and seq: sales and refunds applied, lines whatever their status."""
        return [BoothRecord(*r[:7], bytes(r[7]), *r[8:]) for r in await self._all(
            "SELECT r.terminal_id, t.name, t.merchant_id, m.name, r.kind, r.seq, r.status, r.raw, "
            "CAST(COALESCE(-(SELECT SUM(e.amount_cents) FROM ledger_tx x JOIN ledger_entries e ON e.tx_id = x.id "
            "WHERE x.record_id = r.id AND e.account = :discounts), 0) AS BIGINT), c.tier "
            "FROM records r JOIN terminals t ON t.id = r.terminal_id JOIN merchants m ON m.id = t.merchant_id "
            "LEFT JOIN cards c ON c.card_no = r.card_no "
            "WHERE ((r.status=:applied AND r.kind IN (:sale, :refund)) OR r.kind=:line) "
            "AND r.time_s>=:start AND r.time_s<:end "
            + ("" if merchant_id is None else "AND t.merchant_id=:merchant ") + "ORDER BY r.terminal_id, r.seq",
            _sales_params(start_s, end_s, merchant_id, line=R.KIND_SALE_LINE, discounts=accounts.DISCOUNTS))]

    async def top_ups_by_day(self, start_s, end_s, offset_s=0):
        """Return [TopUpDay] of applied top-ups and issues with time in [start_s, end_s), by the park's day."""
        return [TopUpDay(*r) for r in await self._all(
            "SELECT (r.time_s + :offset) / 86400 AS day, CAST(SUM(r.amount_cents) AS BIGINT), "
            "CAST(COALESCE(-SUM((SELECT SUM(e.amount_cents) FROM ledger_tx x JOIN ledger_entries e ON e.tx_id = x.id "
            "WHERE x.record_id = r.id AND e.account = :bonus)), 0) AS BIGINT), COUNT(*) FROM records r "
            "WHERE r.status=:applied AND r.kind IN (:topup, :issue) AND r.time_s>=:start AND r.time_s<:end "
            "GROUP BY (r.time_s + :offset) / 86400 ORDER BY 1",
            {"offset": offset_s, "bonus": accounts.BONUS, "topup": R.KIND_TOPUP, "issue": R.KIND_ISSUE,
             "applied": RecordStatus.APPLIED, "start": start_s, "end": end_s})]

    async def liabilities(self):
        """Return Liabilities: the ledger's balances of what the park owes, by kind."""
        return Liabilities(*await self._one(
            "SELECT " + ", ".join("CAST(COALESCE(SUM(CASE WHEN account LIKE :%s THEN amount_cents END), 0) AS BIGINT)"
                                  % name for name in Liabilities._fields) + " FROM ledger_entries",
            {"cards_cents": accounts.CARD_PREFIX + "%", "holds_cents": accounts.HOLD_PREFIX + "%",
             "deposits_cents": accounts.DEPOSITS, "pending_credits_cents": accounts.PENDING_CREDITS,
             "merchants_cents": accounts.MERCHANT_PREFIX + "%"}))

    async def merchants(self):
        """Return [Merchant] by id."""
        return [Merchant(*r) for r in await self._all("SELECT id, park_id, name, commission_bps, discount_bearer "
                                                      "FROM merchants "
                                                      "ORDER BY id")]

    async def terminals(self, terminal_id=None):
        """Return [Terminal] of every terminal (or only terminal_id's), by id."""
        where, params = ("WHERE id=? ", (terminal_id,)) if terminal_id is not None else ("", ())
        return [Terminal(*r) for r in await self._all(TERMINAL_SELECT + where + "ORDER BY id", params)]

    async def terminal_ids(self):
        """Return the registered terminal ids, ascending."""
        return [r[0] for r in await self._all("SELECT id FROM terminals ORDER BY id")]

    async def terminal_flags(self, terminal_id):
        """Return TerminalFlags as stored now (the CLI may have changed them), or None."""
        return await self._one_as(TerminalFlags, "SELECT authorised, locked FROM terminals WHERE id=?", (terminal_id,))

    async def broker_credentials(self):
        """Return {terminal_id: broker password} of every terminal that has one."""
        return dict(await self._all("SELECT id, broker_password FROM terminals "
                                    "WHERE broker_password IS NOT NULL ORDER BY id"))

    async def set_terminal(self, terminal_id, **columns):
        """Update terminal columns now (fleet status, authorisation, config)."""
        await self.write(lambda tx: tx.update_terminal(terminal_id, **columns))

    async def pending_commands(self):
        """Return [PendingCommand] not sent yet, oldest first."""
        return [PendingCommand(*r) for r in await self._all(
            "SELECT id, terminal_id, command, actor FROM terminal_commands WHERE sent_at IS NULL "
            "ORDER BY id")]

    async def terminal_commands(self):
        """Return every TerminalCommand, sent or not, oldest first."""
        return [TerminalCommand(*r) for r in await self._all(
            "SELECT id, terminal_id, command, actor, sent_at FROM terminal_commands ORDER BY id")]

    async def reserve_down_counters(self, terminal_id, reserved):
        """Persist a new high-water mark of downlink counters for a terminal."""
        await self.write(lambda tx: tx.update_terminal(terminal_id, counter_down_reserved=reserved))

    async def seqs_above_ack(self, terminal_id=None):
        """Return {terminal_id: [seq]} of the records stored above each terminal's ack (out-of-order arrivals).

        Damaged records held in quarantine count: their seq is stored too (SPEC.md §5.4).
        """
        where, params = ("AND t.id=? ", (terminal_id,)) if terminal_id is not None else ("", ())
        out = {}
        for tid, seq in await self._all(
                "SELECT r.terminal_id, r.seq FROM records r JOIN terminals t ON t.id = r.terminal_id "
                "WHERE r.seq > t.acked_upto %s "
                "UNION ALL SELECT q.terminal_id, q.seq FROM quarantine q JOIN terminals t ON t.id = q.terminal_id "
                "WHERE q.seq IS NOT NULL AND q.seq > t.acked_upto %s" % (where, where), params + params):
            out.setdefault(tid, []).append(seq)
        return out

    async def terminal_gaps(self, terminal_id):
        """Return [(from_seq, to_seq)] of the seq ranges the terminal still owes, ascending."""
        return [tuple(r) for r in await self._all("SELECT from_seq, to_seq FROM terminal_gaps WHERE terminal_id=? "
                                                  "ORDER BY from_seq", (terminal_id,))]

    async def admin_card(self, card_no):
        """Return the AdminCard, or None."""
        return await self._one_as(AdminCard, _ADMIN_CARD_SELECT + "WHERE card_no=?", (card_no,))

    async def admin_cards(self):
        """Return every AdminCard, by number."""
        return [AdminCard(*r) for r in await self._all(_ADMIN_CARD_SELECT + "ORDER BY card_no")]

    async def cancelled_card_requests(self):
        """Return the ids of started, unfinished admin card issues that were cancelled."""
        return [r[0] for r in await self._all(
            "SELECT id FROM card_write_requests WHERE cancelled_at IS NOT NULL AND started_at IS NOT NULL "
            "AND finished_at IS NULL ORDER BY id")]

    async def card_request(self, request_id):
        """Return CardRequest (finished_at, card_no, error) of an admin card issue, or None."""
        return await self._one_as(CardRequest, "SELECT finished_at, card_no, error FROM card_write_requests WHERE id=?",
                                  (request_id,))

    async def card_write_requests(self):
        """Return every CardWriteRequest, oldest first."""
        return [CardWriteRequest(*r) for r in await self._all(
            "SELECT id, desk_terminal_id, started_at, cancelled_at, finished_at, card_no, error "
            "FROM card_write_requests ORDER BY id")]

    async def card(self, card_no):
        """Return the Card, or None."""
        return await self._one_as(Card, "SELECT card_no, uid, tier, status, deposit_cents, shadow_balance_cents, "
                                        "last_counter FROM cards WHERE card_no=?", (card_no,))

    async def card_numbers(self):
        """Return the numbers of every card the hub has a row for, ascending."""
        return [r[0] for r in await self._all("SELECT card_no FROM cards ORDER BY card_no")]

    async def account_balance(self, account):
        """Return the sum of the account's ledger entries in cents."""
        return (await self._one("SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM ledger_entries WHERE account=?",
                                (account,)))[0]

    async def records(self, terminal_id=None):
        """Return [StoredRecord] (of one terminal, if given) by terminal and seq."""
        where, params = ("WHERE r.terminal_id=? ", (terminal_id,)) if terminal_id is not None else ("", ())
        rows = await self._all(
            "SELECT r.id, r.terminal_id, r.seq, r.kind, r.card_no, r.card_counter, r.amount_cents, r.status, "
            "EXISTS (SELECT 1 FROM ledger_tx t WHERE t.record_id = r.id), r.raw FROM records r %s"
            "ORDER BY r.terminal_id, r.seq" % where, params)
        return [StoredRecord(*r[:8], bool(r[8]), bytes(r[9])) for r in rows]

    async def records_between(self, terminal_id, first_seq, last_seq):
        """Return [StoredRecord] of one terminal with first_seq <= seq <= last_seq, by seq."""
        rows = await self._all(
            "SELECT r.id, r.terminal_id, r.seq, r.kind, r.card_no, r.card_counter, r.amount_cents, r.status, "
            "EXISTS (SELECT 1 FROM ledger_tx t WHERE t.record_id = r.id), r.raw FROM records r "
            "WHERE r.terminal_id=? AND r.seq BETWEEN ? AND ? ORDER BY r.seq", (terminal_id, first_seq, last_seq))
        return [StoredRecord(*r[:8], bool(r[8]), bytes(r[9])) for r in rows]

    async def card_trace(self, card_no, limit):
        """Return the newest `limit` CardUse of a card (its records), newest first."""
        return [CardUse(*r) for r in await self._all(
            "SELECT r.time_s, r.terminal_id, t.name, t.merchant_id, r.seq, r.kind, r.amount_cents, "
            "r.balance_after_cents, r.status FROM records r LEFT JOIN terminals t ON t.id = r.terminal_id "
            "WHERE r.card_no=? ORDER BY r.time_s DESC, r.id DESC LIMIT ?", (card_no, limit))]

    async def uncertain_cards(self):
        """Return the card numbers that have unresolved uncertain records."""
        return [r[0] for r in await self._all("SELECT DISTINCT card_no FROM records WHERE status=?",
                                              (RecordStatus.UNCERTAIN,))]

    async def refunds(self):
        """Return [Refund] by terminal and sale."""
        return [Refund(*r) for r in await self._all(
            "SELECT terminal_id, sale_seq, refund_seq FROM refunds ORDER BY terminal_id, sale_seq")]

    async def counts(self):
        """Return StoreCounts: how many rows of each kind the store holds."""
        return StoreCounts(*await self._one(_COUNTS_SELECT))

    async def blacklist_change(self, card_no, reason, add=True, issued_only=False, audit=None):
        """Add (or remove) a card under a new blacklist version; return the version or None if unchanged.

        issued_only: refuse (NotIssued) to add a card this park never issued (no row in cards).
        """
        def run(tx):
            if not add:
                return tx.blacklist_remove(card_no, reason)
            if issued_only and not tx.blacklisted(card_no) and not tx.card_exists(card_no):
                raise NotIssued("card %(card)d was never issued here", card=card_no)
            return tx.blacklist_add(card_no, reason)
        return await self.write(run, audit)

    async def blacklist_version(self):
        """Return the current blacklist version (0 = empty history)."""
        return (await self._one("SELECT COALESCE(MAX(version), 0) FROM blacklist_versions"))[0]

    async def blacklist_changes(self, after_version):
        """Return [BlacklistChange] newer than after_version, oldest first."""
        return [BlacklistChange(*r) for r in await self._all(
            "SELECT version, card_no, action FROM blacklist_versions WHERE version>? ORDER BY version",
            (after_version,))]

    async def blacklist_cards(self):
        """Return the card numbers on the blacklist now, ascending."""
        return [r[0] for r in await self._all("SELECT card_no FROM blacklist WHERE removed_version IS NULL "
                                              "ORDER BY card_no")]

    async def blacklist_entries(self):
        """Return [BlacklistEntry] of the cards on the blacklist now, by card."""
        return [BlacklistEntry(*r) for r in await self._all(
            "SELECT card_no, reason, added_version FROM blacklist WHERE removed_version IS NULL ORDER BY card_no")]

    async def attempt_counts(self):
        """Return {card_no: number of lock and attempt records}."""
        return dict(await self._all("SELECT card_no, COUNT(*) FROM attempts GROUP BY card_no"))

    async def attempts(self, card_no, limit):
        """Return the last `limit` Attempt of a card, newest first."""
        return [Attempt(*r) for r in await self._all(
            "SELECT time_s, terminal_id, kind FROM attempts WHERE card_no=? ORDER BY time_s DESC, id DESC LIMIT ?",
            (card_no, limit))]

    async def alarms(self):
        """Return [Alarm] by id."""
        return [Alarm(*r) for r in await self._all(
            "SELECT id, kind, card_no, terminal_id, seq, detail, at FROM alarms ORDER BY id")]

    async def quarantined(self):
        """Return [Quarantined] by id; size is the whole payload's."""
        return [Quarantined(*r) for r in await self._all(_QUARANTINE_SELECT + "ORDER BY id")]

    async def conflicts(self):
        """Return [Conflict] by id."""
        return [Conflict(*r) for r in await self._all(
            "SELECT id, terminal_id, seq, raw, existing_raw FROM conflicts ORDER BY id")]

    # -- API keys and idempotency keys
    async def add_api_key(self, name, secret_sha256, scopes, actor, audit=None):
        """Store a new API key (the secret's SHA-256 and its scopes); return its id. ValueError if the name is taken."""
        def run(tx):
            if tx.sql_row("SELECT 1 FROM api_keys WHERE name=?", (name,)) is not None:
                raise Refused("an API key named %(name)r exists already", name=name)
            return tx.sql_row("INSERT INTO api_keys(name, secret_sha256, scopes, created_at, created_by) "
                              "VALUES (?, ?, ?, ?, ?) RETURNING id",
                              (name, bytes(secret_sha256), scopes, tx.now, actor))[0]
        return await self.write(run, audit)

    async def api_keys(self):
        """Return every ApiKey, revoked ones included, by id."""
        return [_api_key(*r) for r in await self._all(_API_KEY_SELECT + "ORDER BY id")]

    async def api_key_by_hash(self, secret_sha256):
        """Return the ApiKey whose secret has this SHA-256, or None."""
        return await self._one_as(_api_key, _API_KEY_SELECT + "WHERE secret_sha256=?", (bytes(secret_sha256),))

    async def revoke_api_key(self, name, actor, audit=None):
        """Revoke an API key by name; return False if it was revoked already. ValueError if there is none."""
        def run(tx):
            if tx.sql_row("SELECT 1 FROM api_keys WHERE name=?", (name,)) is None:
                raise Refused("there is no API key named %(name)r", name=name)
            return tx.sql_rowcount("UPDATE api_keys SET revoked_at=?, revoked_by=? WHERE name=? AND revoked_at IS NULL",
                                   (tx.now, actor, name)) == 1
        return await self.write(run, audit)

    async def idempotent_response(self, api_key_id, key):
        """Return the IdempotentResponse stored for this key's Idempotency-Key, or None."""
        return await self._one_as(_idempotent_response, "SELECT request_sha256, status, response FROM idempotency_keys "
                                  "WHERE api_key_id=? AND key=?", (api_key_id, key))

    async def keep_idempotent_response(self, api_key_id, key, request_sha256, status, body):
        """Store the first response to an Idempotency-Key; return the stored IdempotentResponse (the first one)."""
        def run(tx):
            tx.sql_rowcount("INSERT INTO idempotency_keys(api_key_id, key, request_sha256, status, response, "
                            "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (api_key_id, key) DO NOTHING",
                            (api_key_id, key, bytes(request_sha256), status, body, tx.now))
            row = tx.sql_row("SELECT request_sha256, status, response FROM idempotency_keys "
                             "WHERE api_key_id=? AND key=?", (api_key_id, key))
            return IdempotentResponse(bytes(row[0]), row[1], row[2])
        return await self.write(run)

    # -- operator accounts
    async def add_operator(self, username, password_hash, roles, actor, display_name=None, merchant_id=None,
                           audit=None):
        """Store a new operator account; return its id. ValueError if the name is taken or the merchant unknown."""
        def run(tx):
            if tx.sql_row("SELECT 1 FROM operators WHERE username=?", (username,)) is not None:
                raise Refused("an operator named %(name)r exists already", name=username)
            if merchant_id is not None and tx.sql_row("SELECT 1 FROM merchants WHERE id=?", (merchant_id,)) is None:
                raise Refused("there is no merchant %(merchant)d", merchant=merchant_id)
            return tx.sql_row("INSERT INTO operators(username, display_name, password_hash, roles, merchant_id, "
                              "created_at, created_by, password_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                              "RETURNING id", (username, display_name, password_hash, roles, merchant_id, tx.now,
                                               actor, tx.now))[0]
        return await self.write(run, audit)

    async def operators(self):
        """Return every Operator, disabled ones included, by id."""
        return [Operator(*r) for r in await self._all(_OPERATOR_SELECT + "ORDER BY id")]

    async def operator(self, username):
        """Return the Operator with this login name, or None."""
        return await self._one_as(Operator, _OPERATOR_SELECT + "WHERE username=?", (username,))

    async def update_operator(self, username, audit=None, **changes):
        """Change an operator's password_hash, roles, active, display_name or last_login_at; ValueError if unknown."""
        unknown = set(changes) - set(_OPERATOR_CHANGES)
        if unknown or not changes:
            raise TypeError("update_operator sets %s, not %s" % (", ".join(_OPERATOR_CHANGES), sorted(unknown)))
        columns = [c for c in _OPERATOR_CHANGES if c in changes]

        def run(tx):
            if tx.sql_row("SELECT 1 FROM operators WHERE username=?", (username,)) is None:
                raise Refused("there is no operator named %(name)r", name=username)
            tx.sql_rowcount("UPDATE operators SET %s WHERE username=?" % ", ".join("%s=?" % c for c in columns),
                            tuple(changes[c] for c in columns) + (username,))
            return True
        return await self.write(run, audit)

    async def unsettled(self, merchant_id, start_s, end_s):
        """Return SettlementTotals of what closing [start, end) would take now (see close_settlements)."""
        return S.totals(await self._all(S.TAKEN, S.taken_params(merchant_id, start_s, end_s)))

    async def settlement(self, merchant_id, start_s, end_s):
        """Return the Settlement closed for exactly this period, or None."""
        return await self._one_as(Settlement, S.SETTLEMENT_ROW + "WHERE s.merchant_id=? AND s.period_start=? "
                                  "AND s.period_end=?", (merchant_id, start_s, end_s))

    async def settlements(self):
        """Return every closed Settlement, by id."""
        return [Settlement(*r) for r in await self._all(S.SETTLEMENT_ROW + "ORDER BY s.id")]

    async def settlement_records(self, settlement_id):
        """Return the ids of the records a closed settlement paid, ascending."""
        return [r[0] for r in await self._all("SELECT record_id FROM settlement_records WHERE settlement_id=? "
                                              "ORDER BY record_id", (settlement_id,))]

    async def close_settlements(self, merchant_ids, start_s, end_s, audit=None):
        """Close the merchants' period in one transaction (all or none); return [(Settlement, newly_closed)].

        A close takes the merchant's applied sales and refunds of [start, end)
        that no settlement holds yet, and the late ones: records of the
        merchant's closed periods that reached the hub after their period
        closed. An exactly matching closed period is returned as it is. Raises
        PeriodOverlap when the period overlaps another closed period of a
        merchant, ValueError when a merchant does not exist.
        """
        # audit([details of each newly closed period]) -> entries, appended in the closing transaction.
        closed = await self.write(lambda tx: [self._close_one(tx, m, start_s, end_s) for m in merchant_ids],
                                  audit and (lambda res: audit([new for _, new in res if new])))
        out = []
        for settlement_id, new in closed:
            out.append((await self._one_as(Settlement, S.SETTLEMENT_ROW + "WHERE s.id=?", (settlement_id,)),
                        new is not None))
        return out


def _api_key(key_id, name, secret_sha256, *rest):
    """An ApiKey from its columns (the hash as bytes whatever the driver returns)."""
    return ApiKey(key_id, name, bytes(secret_sha256), *rest)


def _idempotent_response(request_sha256, status, response):
    """An IdempotentResponse from its columns (the request's hash as bytes whatever the driver returns)."""
    return IdempotentResponse(bytes(request_sha256), status, response)
