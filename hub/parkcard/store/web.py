"""The store's web sessions, webhooks and webhook outbox (tables of migrations 25 and 33): SQL both backends run
as written (a mixin beside SharedMethods, using its `_one`, `_all` and `write`).

A webhook reads two streams: the records past its record_cursor (stored applied at once, by id), and the
webhook_late_records log past its late_cursor (records applied after they were stored, logged by a trigger
whatever path applied them). A record stored and applied in one transaction shows in both; the outbox's
(webhook_id, event_key) key keeps one event of it.
"""

import asyncio

from parkcard.store.rows import SessionLimits, Webhook, WebhookDelivery, WebSession

_SESSION_SELECT = "SELECT %s FROM web_sessions " % ", ".join(WebSession._fields)
_WEBHOOK_SELECT = "SELECT %s FROM webhooks " % ", ".join(Webhook._fields)
_DELIVERY_SELECT = "SELECT %s FROM webhook_outbox " % ", ".join(WebhookDelivery._fields)
DUE, DELIVERED, GIVEN_UP = "due", "delivered", "given_up"
_RECORD_EVENT_COLUMNS = "r.id, r.terminal_id, r.seq, r.kind, r.card_no, r.amount_cents, r.balance_after_cents, " \
                        "r.time_s, r.status"


def _web_session(token_sha256, *rest):
    """A WebSession from its columns (the token's hash as bytes whatever the driver returns)."""
    return WebSession(bytes(token_sha256), *rest)


class WebMethods:
    """interface.Store's web session and webhook methods, one SQL for every backend."""

    @property
    def events_added(self):
        """An asyncio.Event set after each commit of this process that stored records or alarms, or changed a
        record's status (what may become a webhook's event); the sender clears it before each round."""
        event = getattr(self, "_events_added", None)
        if event is None:
            event = self._events_added = asyncio.Event()
        return event

    def _committed(self, events):
        """After a write committed, on the event loop: wake the webhook sender when it stored what may be an event
        (events: the batch's WriteTx.may_hold_events())."""
        if events:
            self.events_added.set()

    # -- web sessions
    async def park_session_limits(self, park_id=1):
        """The park's SessionLimits (their defaults before the park is set up)."""
        return await self._one_as(SessionLimits, "SELECT session_idle_s, session_max_s FROM parks WHERE id=?",
                                  (park_id,)) or SessionLimits()

    async def set_park_session_limits(self, park_id, limits, audit=None):
        """Set the park's SessionLimits, creating the park; True if they changed."""
        def run(tx):
            before = tx.sql_row("SELECT session_idle_s, session_max_s FROM parks WHERE id=?", (park_id,))
            if before is None:
                tx.sql_rowcount("INSERT INTO parks(id, name) VALUES (?, ?)", (park_id, "park %d" % park_id))
            elif tuple(before) == tuple(limits):
                return False
            tx.sql_rowcount("UPDATE parks SET session_idle_s=?, session_max_s=? WHERE id=?",
                            (limits.idle_s, limits.max_s, park_id))
            return True
        return await self.write(run, audit)

    async def keep_web_session(self, token_sha256, username, csrf, locale, expires_at):
        """Keep a new session (by its token's SHA-256) until expires_at."""
        def run(tx):
            tx.sql_rowcount("INSERT INTO web_sessions(token_sha256, username, csrf, locale, created_at, expires_at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (bytes(token_sha256), username, csrf, locale, tx.now,
                                                          expires_at))
        await self.write(run)

    async def web_session(self, token_sha256, now):
        """The rows.WebSession of a token's SHA-256 not expired at `now`, or None."""
        return await self._one_as(_web_session, _SESSION_SELECT + "WHERE token_sha256=? AND expires_at>?",
                                  (bytes(token_sha256), now))

    async def set_web_session_locale(self, token_sha256, locale):
        """A session's language changed."""
        await self.write(lambda tx: tx.sql_rowcount("UPDATE web_sessions SET locale=? WHERE token_sha256=?",
                                                    (locale, bytes(token_sha256))))

    async def end_web_sessions(self, token_sha256=None, username=None, expired_before=None):
        """Forget one session (its token's SHA-256), every session of username, or those expired before a
        time; return how many."""
        if token_sha256 is not None:
            where, params = "token_sha256=?", (bytes(token_sha256),)
        elif username is not None:
            where, params = "username=?", (username,)
        else:
            where, params = "expires_at<=?", (expired_before,)
        return await self.write(lambda tx: tx.sql_rowcount("DELETE FROM web_sessions WHERE " + where, params))

    # -- webhooks
    async def add_webhook(self, url, events, secret, actor, audit=None):
        """Register a webhook for events from now on (its cursors at the newest record, alarm and record applied
        late); its id."""
        def run(tx):
            record = tx.sql_row("SELECT COALESCE(MAX(id), 0) FROM records")[0]
            alarm = tx.sql_row("SELECT COALESCE(MAX(id), 0) FROM alarms")[0]
            late = tx.sql_row("SELECT COALESCE(MAX(id), 0) FROM webhook_late_records")[0]
            return tx.sql_row("INSERT INTO webhooks(url, events, secret, created_by, created_at, record_cursor, "
                              "alarm_cursor, late_cursor) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                              (url, events, secret, actor, tx.now, record, alarm, late))[0]
        return await self.write(run, audit)

    async def webhooks(self, with_removed=False):
        """[rows.Webhook] by id (the removed ones too when asked)."""
        where = "" if with_removed else "WHERE removed_at IS NULL "
        return [Webhook(*r) for r in await self._all(_WEBHOOK_SELECT + where + "ORDER BY id")]

    async def remove_webhook(self, webhook_id, audit=None):
        """Stop a webhook: nothing more is queued or sent to it; True when it was active."""
        def run(tx):
            changed = tx.sql_rowcount("UPDATE webhooks SET removed_at=? WHERE id=? AND removed_at IS NULL",
                                      (tx.now, webhook_id))
            tx.sql_rowcount("UPDATE webhook_outbox SET state=? WHERE webhook_id=? AND state=?",
                            (GIVEN_UP, webhook_id, DUE))
            return changed == 1
        return await self.write(run, audit)

    async def fill_webhook_outbox(self, event_of, batch_max, hooks=None):
        """Queue the events of the records, records applied late and alarms past each active webhook's cursors
        (hooks: the active webhooks when the caller read them already), advancing the cursors in the same
        transaction (a restart neither loses nor repeats one); return how many were queued. Nothing is written
        for a webhook with nothing past its cursors.

        event_of(source, row, wanted) -> (event, event_key, body) or None: source "record" with row (id, terminal_id,
        seq, kind, card_no, amount_cents, balance_after_cents, time_s, status), or "alarm" with row (id, kind,
        card_no, terminal_id, seq, detail, at); wanted: the webhook's event types. Only the hub that owns the
        database fills it: the cursors read here are checked unchanged as they advance.
        """
        queued = 0
        for hook in (await self.webhooks()) if hooks is None else hooks:
            wanted = frozenset(hook.events.split())
            rows = await self._all("SELECT %s FROM records r WHERE r.id>? ORDER BY r.id LIMIT ?"
                                   % _RECORD_EVENT_COLUMNS, (hook.record_cursor, batch_max))
            late = await self._all("SELECT l.id, %s FROM webhook_late_records l JOIN records r ON r.id = l.record_id "
                                   "WHERE l.id>? ORDER BY l.id LIMIT ?" % _RECORD_EVENT_COLUMNS,
                                   (hook.late_cursor, batch_max))
            alarms = await self._all("SELECT id, kind, card_no, terminal_id, seq, detail, at FROM alarms "
                                     "WHERE id>? ORDER BY id LIMIT ?", (hook.alarm_cursor, batch_max))
            if not rows and not late and not alarms:
                continue
            events = [event_of(source, tuple(row), wanted) for source, batch in (
                ("record", rows), ("record", [row[1:] for row in late]), ("alarm", alarms)) for row in batch]

            def run(tx, hook=hook, rows=rows, late=late, alarms=alarms, events=events):
                if tx.sql_rowcount("UPDATE webhooks SET record_cursor=?, late_cursor=?, alarm_cursor=? WHERE id=? "
                                   "AND record_cursor=? AND late_cursor=? AND alarm_cursor=? AND removed_at IS NULL",
                                   (rows[-1][0] if rows else hook.record_cursor,
                                    late[-1][0] if late else hook.late_cursor,
                                    alarms[-1][0] if alarms else hook.alarm_cursor, hook.id, hook.record_cursor,
                                    hook.late_cursor, hook.alarm_cursor)) != 1:
                    return 0        # removed meanwhile
                done = 0
                for event in events:
                    if event is not None:
                        done += tx.sql_rowcount(
                            "INSERT INTO webhook_outbox(webhook_id, event, event_key, body, created_at, attempts, "
                            "next_at, state) VALUES (?, ?, ?, ?, ?, 0, ?, ?) "
                            "ON CONFLICT (webhook_id, event_key) DO NOTHING",
                            (hook.id, event[0], event[1], event[2], tx.now, tx.now, DUE))
                return done
            queued += await self.write(run)
        return queued

    async def due_webhook_deliveries(self, now, limit):
        """[(rows.WebhookDelivery, url, secret)] due at `now` to active webhooks, oldest first."""
        rows = await self._all(
            "SELECT %s, h.url, h.secret FROM webhook_outbox o JOIN webhooks h ON h.id = o.webhook_id "
            "WHERE o.state=? AND o.next_at<=? AND h.removed_at IS NULL ORDER BY o.next_at, o.id LIMIT ?"
            % ", ".join("o." + f for f in WebhookDelivery._fields), (DUE, now, limit))
        return [(WebhookDelivery(*r[:-2]), r[-2], r[-1]) for r in rows]

    async def next_webhook_due_at(self):
        """The earliest next_at of a delivery due to an active webhook (epoch seconds), or None when none is due."""
        return await self._one_value("SELECT MIN(o.next_at) FROM webhook_outbox o JOIN webhooks h "
                                     "ON h.id = o.webhook_id WHERE o.state=? AND h.removed_at IS NULL", (DUE,))

    async def webhook_delivery_counts(self):
        """{webhook id: {state: count}} of the outbox."""
        counts = {}
        for webhook_id, state, n in await self._all(
                "SELECT webhook_id, state, COUNT(*) FROM webhook_outbox GROUP BY webhook_id, state"):
            counts.setdefault(webhook_id, {})[state] = n
        return counts

    async def webhook_deliveries(self, webhook_id=None):
        """[rows.WebhookDelivery] of one webhook or all, by id."""
        where, params = ("WHERE webhook_id=? ", (webhook_id,)) if webhook_id is not None else ("", ())
        return [WebhookDelivery(*r) for r in await self._all(_DELIVERY_SELECT + where + "ORDER BY id", params)]

    async def webhook_attempted(self, attempts):
        """Record one attempt of each delivery, in one transaction: [(delivery id, delivered, next_at, error,
        give_up)]; one not delivered is due again at next_at, or given up."""
        def run(tx):
            for delivery_id, delivered, next_at, error, give_up in attempts:
                state = DELIVERED if delivered else (GIVEN_UP if give_up else DUE)
                tx.sql_rowcount("UPDATE webhook_outbox SET attempts=attempts+1, state=?, "
                                "next_at=COALESCE(?, next_at), delivered_at=?, last_error=? WHERE id=? AND state=?",
                                (state, next_at, tx.now if delivered else None, error, delivery_id, DUE))
        if attempts:
            await self.write(run)
