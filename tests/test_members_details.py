"""A member's details changed (name, phone, note) on every store backend: another member's phone is refused and
nothing changes."""

import asyncio


from parkcard.services import members
from parkcard.services.errors import Refusal
from parkcard.services.privileges import Actor
from parkcard.store import open_store

ADMIN = Actor("test:admin")
CASHIER = Actor("cas", roles=("cashier",))
FINANCE = Actor("fin", roles=("finance",))


def test_a_members_details_are_changed_and_a_taken_phone_is_refused(store_url):
    async def steps():
        storage = await open_store(store_url)
        try:
            li = await members.register(storage, CASHIER, "Li Wei", "+86 138 0000 1234")
            wang = await members.register(storage, CASHIER, "Wang Fang", "13900001111", note="season pass")
            changed = await members.change_details(storage, CASHIER, li.member_no, " Li Wei-Ming ", "138-0000-9999",
                                                   "moved")
            refused = []
            for who, args in ((CASHIER, (li.member_no, "Li", "13900001111")), (CASHIER, (99, "Nobody", "12345")),
                              (CASHIER, (li.member_no, "", "12345")), (FINANCE, (li.member_no, "Li", "12345"))):
                try:
                    await members.change_details(storage, who, *args)
                    refused.append("changed")
                except Refusal as exc:
                    refused.append(exc.code)
                except Exception as exc:        # the privilege check's refusal names the privilege
                    refused.append(type(exc).__name__ + (": members.manage" if "members.manage" in str(exc) else ""))
            return (changed, await members.find_member(storage, CASHIER, phone="13800009999"), refused,
                    await members.find_member(storage, CASHIER, member_no=wang.member_no))
        finally:
            await storage.close()
    changed, found, refused, wang = asyncio.run(steps())
    assert (changed.name, changed.phone, changed.note) == ("Li Wei-Ming", "13800009999", "moved")
    assert found == changed
    assert refused == ["member_exists", "member_unknown", "bad_name", "NotAllowed: members.manage"]
    assert (wang.name, wang.phone, wang.note) == ("Wang Fang", "13900001111", "season pass")

