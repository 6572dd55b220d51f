"""Gate terminals' configs: direction, area, re-entry rule, daily reset and the ticket products accepted.

A gate's config travels in its T_CONFIG tail (SPEC.md §5.8); the hub sends it
when the gate syncs with an older config version, and the running hub at once
when the config changes through it.
"""

from protocol import frames, ticket as t

from parkcard.domain import tickets as rules
from parkcard.services.errors import Refusal
from parkcard.services.privileges import FLEET_READ, GATES, requires
from parkcard.store import audited
from parkcard.transport import notify

DIRECTIONS_BY_NAME = {name: code for code, name in rules.DIRECTION_NAMES.items()}
REENTRY_BY_NAME = {name: code for code, name in rules.REENTRY_NAMES.items()}


@requires(GATES)
async def configure(store, actor, terminal_id, direction, area=0, reentry="after-exit", reentry_min=0, reset_s=0,
                    products=()):
    """Set a gate terminal's config (names as in DIRECTIONS_BY_NAME, REENTRY_BY_NAME); return its new version."""
    rows = await store.terminals(terminal_id)
    if not rows or rows[0].role != frames.ROLE_GATE:
        raise Refusal("not_a_gate", "terminal %(terminal)d is not a registered gate terminal (see `parkcard "
                                    "terminals`)", terminal=terminal_id)
    if direction not in DIRECTIONS_BY_NAME:
        raise Refusal("gate_config", "direction is one of %(names)s", names=", ".join(DIRECTIONS_BY_NAME))
    if reentry not in REENTRY_BY_NAME:
        raise Refusal("gate_config", "the re-entry rule is one of %(names)s", names=", ".join(REENTRY_BY_NAME))
    known = {p.id for p in await store.ticket_products()}
    unknown = sorted(set(products) - known)
    if unknown:
        raise Refusal("ticket_product_not_found", "no ticket product %(products)s (see `parkcard ticket product list`)",
                      products=", ".join(map(str, unknown)))
    if not products:
        raise Refusal("gate_config", "a gate accepts at least one ticket product")
    cfg = t.GateConfig(0, DIRECTIONS_BY_NAME[direction], area, REENTRY_BY_NAME[reentry], reentry_min, reset_s,
                       [t.GateProduct(p) for p in sorted(set(products))])
    try:
        cfg.encode()
    except Exception as exc:  # noqa: BLE001 - protocol.errors.Malformed: the bounds of SPEC.md §5.8
        raise Refusal("gate_config", "%(problem)s: nothing changed", problem=exc) from None
    version = await store.set_gate(terminal_id, cfg.direction, area, cfg.reentry, reentry_min, reset_s,
                                   sorted(set(products)), audit=audited(
                                       actor.name, "gate.configure", when=lambda _: True,
                                       extra=lambda v: dict(version=v), terminal_id=terminal_id, direction=direction,
                                       area=area, reentry=reentry, reentry_min=reentry_min, reset_s=reset_s,
                                       products=sorted(set(products))))
    await actor.told(notify.TERMINALS, terminal_id=terminal_id)
    return version


@requires(FLEET_READ)
async def listing(store, actor):
    """Every gate's config ([GateRow]), by terminal."""
    return await store.gates()
