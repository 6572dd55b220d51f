"""The running hub's line to its desk terminals: send a desk order, wait for its report (SPEC.md §5.9).

The hub holds the waiters in memory (one hub process per database): an order
whose report never comes ends in DeskUnanswered, and the operation that asked
for it stays as the store keeps it (parkcard.services.desk), never guessed.
"""

import asyncio
import itertools
import time

from protocol import desk as D
from protocol import frames

from parkcard.services.privileges import ServiceError

ORDER_TIMEOUT_S = 30            # a cashier puts the card on the desk within half a minute


class DeskUnanswered(ServiceError):
    """The desk terminal sent no report in time: offline, or no card was put on it."""


class DeskReport:
    """What a desk terminal reported after an order: status, the card's UID, {block: 16 bytes} read after."""

    def __init__(self, status, uid, blocks):
        self.status = status
        self.uid = uid
        self.blocks = blocks


class DeskLink:
    """Sends T_DESK_ORDER through the hub's downlink and hands each T_DESK_REPORT to its waiter."""

    def __init__(self, registry, downlink):
        self.registry = registry
        self.downlink = downlink
        self._waiters = {}      # request_id -> (desk terminal id, future of DeskReport)
        self._ids = itertools.count(int(time.time() * 8) & 0x7FFFFFFF)

    def desk_state(self, desk_terminal_id):
        """The registry state of a desk terminal; ServiceError when it is none."""
        state = self.registry.get(desk_terminal_id)
        if state is None or state.role != frames.ROLE_DESK or desk_terminal_id == D.DESK_SOURCE_ID:
            raise ServiceError("terminal %(terminal)d is not a registered desk terminal: register it with role desk",
                               terminal=desk_terminal_id)
        return state

    async def order(self, desk_terminal_id, op, uid, key_type, key, blocks=(), timeout_s=ORDER_TIMEOUT_S):
        """Have the desk read (or write, then read back) the card `uid`; return its DeskReport."""
        state = self.desk_state(desk_terminal_id)
        request_id = next(self._ids) & 0xFFFFFFFF
        done = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = (desk_terminal_id, done)
        body = D.order_body(request_id, op, uid, key_type, D.wrap_key(state.frame_mac, request_id, key), blocks)
        try:
            await self.downlink.send(desk_terminal_id, frames.T_DESK_ORDER, body)
            try:
                return await asyncio.wait_for(done, timeout_s)
            except asyncio.TimeoutError:
                raise DeskUnanswered("desk terminal %(terminal)d did not answer within %(seconds)d s: is it online, "
                                     "and is the card on it?", terminal=desk_terminal_id, seconds=timeout_s) from None
        finally:
            self._waiters.pop(request_id, None)

    def waiting(self):
        """True while an order waits for its report."""
        return bool(self._waiters)

    def deliver(self, reports):
        """Hand each (terminal id, request_id, status, uid, blocks) to the order waiting for it."""
        for terminal_id, request_id, status, uid, blocks in reports:
            waiter = self._waiters.get(request_id)
            if waiter is not None and waiter[0] == terminal_id and not waiter[1].done():
                waiter[1].set_result(DeskReport(status, uid, blocks))
