"""Operator accounts (admin): the list, add one, disable and enable; the services check and audit."""

from fastapi import APIRouter, Depends, Request

from parkcard.services import operators
from parkcard.services.privileges import ROLES, ServiceError
from parkcard.web.pages import (N_, back, changed_back, gettext, operator, refusable_page, refused_text,
                                session_form, state, whole_number)

router = APIRouter()


@router.get("/operators")
async def operator_page(request: Request, session=Depends(operator)):
    """Every operator account (privilege operators.manage in the service)."""
    return await refusable_page(request, session, "operators.html",
                                lambda: operators.list_operators(state(request).store, session.actor),
                                "operators", roles=ROLES)


@router.post("/operators")
async def operator_add(request: Request, session=Depends(operator)):
    """Create an operator account with the roles ticked."""
    form = await session_form(request, session)
    username = form.get("username", "")
    try:
        merchant = form.get("merchant_id", "").strip()
        merchant_id = whole_number(form, "merchant_id", "the merchant") if merchant else None
        roles = [r for r in ROLES if form.get("role_" + r)]
        await operators.create_operator(state(request).store, session.actor, username, form.get("password", ""),
                                        roles, form.get("display_name") or None, merchant_id)
    except ServiceError as exc:
        return back("/operators", session, refused_text(request, session, exc), "error")
    return back("/operators", session, gettext(request, session, "Operator %(name)s is added.")
                % {"name": username.strip().lower()})


@router.post("/operators/{username}/disable")
async def operator_disable(request: Request, username: str, session=Depends(operator)):
    """Disable an account; its open sessions end at once."""
    await session_form(request, session)
    web = state(request)

    async def disable():
        changed = await operators.disable_operator(web.store, session.actor, username)
        await web.sessions.revoke_operator(web.store, username)
        return changed
    return await changed_back(request, session, "/operators", disable, N_("Operator %(name)s is disabled."),
                              N_("Operator %(name)s was disabled already."), {"name": username})


@router.post("/operators/{username}/enable")
async def operator_enable(request: Request, username: str, session=Depends(operator)):
    """Enable a disabled account again."""
    await session_form(request, session)
    return await changed_back(request, session, "/operators",
                              lambda: operators.enable_operator(state(request).store, session.actor, username),
                              N_("Operator %(name)s is enabled."), N_("Operator %(name)s was enabled already."),
                              {"name": username})
