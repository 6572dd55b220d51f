"""Terminals: register, lock, unlock, de-authorise, push the configuration, authorise at an admin card tap, bundle
exports.

Lock and de-authorise queue a command in the same transaction as the flags
(terminal_commands); the running hub sends queued commands when told, or at
its registry poll (parkcard.app.REGISTRY_POLL_S) if the notice was lost.
"""

import logging
import secrets

from protocol import frames
from protocol.desk import DESK_SOURCE_ID

from parkcard.domain.lifecycle import AdminCardState
from parkcard.services.inputs import checked
from parkcard.services.errors import Refusal
from parkcard.services.privileges import FLEET_READ, TERMINALS, ServiceError, requires
from parkcard.store import audited
from parkcard.transport import broker_auth, notify

log = logging.getLogger("parkcard.services")

TERMINAL_KEY_SIZE = 32


@requires(TERMINALS)
async def register(store, actor, terminal_id, merchant_id, role, name, key=None, fixed_price_cents=0, category=0,
                   broker_password=None):
    """Register a terminal; return (its 32-byte key, its broker password), each generated unless given."""
    name = checked(terminal_id=terminal_id, merchant_id=merchant_id, fixed_price_cents=fixed_price_cents,
                   name=name)
    if terminal_id == DESK_SOURCE_ID:
        raise ServiceError("terminal id %(terminal)d is the hub's own desk source (SPEC.md §4.10): take another id",
                           terminal=terminal_id)
    if role not in frames.ROLE_NAMES:
        raise ServiceError("role %(role)r is none of %(roles)s", role=role,
                           roles=", ".join(sorted(frames.ROLE_NAMES.values())))
    key = key or secrets.token_bytes(TERMINAL_KEY_SIZE)
    broker_password = broker_password or broker_auth.new_password()
    try:
        await store.add_terminal(terminal_id, merchant_id, role, key, name, fixed_price_cents, category,
                                 broker_password, audit=audited(
                                     actor.name, "terminal.add", when=lambda _: True, terminal_id=terminal_id,
                                     merchant_id=merchant_id, role=frames.ROLE_NAMES[role], name=name))
    except ValueError as exc:
        raise ServiceError("%(problem)s: check `parkcard terminals` and `parkcard merchant add`", problem=exc) from None
    log.info("event=terminal_registered terminal=%d merchant=%d role=%s actor=%s", terminal_id, merchant_id,
             frames.ROLE_NAMES[role], actor.name)
    await actor.told(notify.TERMINALS, terminal_id=terminal_id)
    return key, broker_password


@requires(TERMINALS)
async def exported(store, actor, terminal_id, path):
    """Record that a terminal's provisioning bundle (its secrets) was written to path."""
    await store.audit(actor.name, "terminal.export", terminal_id=terminal_id, path=str(path))


@requires(TERMINALS)
async def lock(store, actor, terminal_id):
    """Lock a terminal: it forgets its card keys (CMD_LOCK) and no admin card authorises it until unlocked.

    Returns False when it was locked already (nothing queued, nothing audited); so do the two below.
    """
    return await _command(store, actor, terminal_id, frames.CMD_LOCK, "lock", locked=1, authorised=0)


@requires(TERMINALS)
async def unlock(store, actor, terminal_id):
    """Allow a locked terminal to be authorised again by an admin card tap (nothing is sent)."""
    return await _command(store, actor, terminal_id, None, "unlock", locked=0)


@requires(TERMINALS)
async def deauthorise(store, actor, terminal_id):
    """De-authorise a terminal (CMD_DEAUTHORISE): it forgets its card keys until the next admin card tap."""
    return await _command(store, actor, terminal_id, frames.CMD_DEAUTHORISE, "deauthorise", authorised=0)


@requires(TERMINALS)
async def push_config(store, actor, terminal_id, send_config):
    """Send a terminal its configuration now (T_CONFIG, SPEC.md §5.3) by `await send_config(terminal_id)` (the
    running hub's downlink), audited; False when the hub could not publish it: the terminal still gets it at its
    next sync, whose answer carries the configuration whenever the versions differ."""
    checked(terminal_id=terminal_id)
    if not await store.terminals(terminal_id):
        raise _not_registered(terminal_id)
    sent = await send_config(terminal_id) is not None
    await store.audit(actor.name, "terminal.config_push", terminal_id=terminal_id, sent=sent)
    log.info("event=terminal_config_push terminal=%d actor=%s sent=%s", terminal_id, actor.name, sent)
    return sent


async def _command(store, actor, terminal_id, command, action, **columns):
    """Set the terminal's flags and queue its command (if any) with the audit entry, in one transaction."""
    checked(terminal_id=terminal_id)
    try:
        changed = await store.terminal_command(terminal_id, command, actor.name, audit=audited(
            actor.name, "terminal." + action, terminal_id=terminal_id), **columns)
    except ValueError:
        raise _not_registered(terminal_id) from None
    if changed:
        log.info("event=terminal_%s terminal=%d actor=%s", action, terminal_id, actor.name)
        await actor.told(notify.COMMANDS, terminal_id=terminal_id)
    return changed


def _not_registered(terminal_id):
    """The refusal for a terminal id nobody registered."""
    return Refusal("terminal_not_registered", "terminal %(terminal)d is not registered (see `parkcard terminals`)",
                   terminal=terminal_id)


@requires(FLEET_READ)
async def fleet(store, actor):
    """Every registered terminal with what it last reported (online, versions, backlog, heap), by id."""
    return await store.terminals()


@requires(FLEET_READ)
async def one(store, actor, terminal_id):
    """One registered terminal with what it last reported; Refusal(terminal_not_registered) otherwise."""
    checked(terminal_id=terminal_id)
    rows = await store.terminals(terminal_id)
    if not rows:
        raise _not_registered(terminal_id)
    return rows[0]


@requires(FLEET_READ)
async def commands(store, actor, terminal_id):
    """The commands operators decided for one terminal ([TerminalCommand]), newest first, sent or queued."""
    checked(terminal_id=terminal_id)
    return [c for c in reversed(await store.terminal_commands()) if c.terminal_id == terminal_id]


@requires(TERMINALS)
async def authorise(store, actor, terminal_id, admin_card_no, uid):
    """A technician tapped an admin card at a terminal (T_AUTH); return None when authorised, else the reason.

    Authorised only when the terminal is registered and not locked and the card is known, unrevoked,
    written and has this UID; the decision and its audit entry are one transaction.
    """
    reason = await auth_refusal(store, terminal_id, admin_card_no, uid)
    if reason is not None:
        await store.audit(actor.name, "terminal.auth_reject", terminal_id=terminal_id, admin_card_no=admin_card_no,
                          uid=bytes(uid), reason=reason)
        return reason
    await store.write(lambda tx: tx.update_terminal(terminal_id, authorised=1), audit=audited(
        actor.name, "terminal.authorise", when=lambda _: True, terminal_id=terminal_id,
        admin_card_no=admin_card_no))
    return None


async def auth_refusal(store, terminal_id, admin_card_no, uid):
    """The reason to refuse an authorisation, or None (read now: the CLI may have changed it)."""
    flags = await store.terminal_flags(terminal_id)
    if flags is None:
        return "unknown_terminal"
    if flags[1]:
        return "terminal_locked"
    card = await store.admin_card(admin_card_no)
    if card is None:
        return "unknown_admin_card"
    if card.revoked_at is not None:
        return "revoked_admin_card"
    if bytes(card.uid) != bytes(uid):
        return "admin_card_uid_mismatch"
    if card.state != AdminCardState.WRITTEN:     # sealed, but no desk reported it written (or abandoned)
        return "admin_card_not_written"
    return None
