"""API keys of third parties (admin): the list with scopes, create one (its secret shown once), revoke one."""

from fastapi import APIRouter, Depends, Request

from parkcard.api.app import API_PREFIX
from parkcard.services import apikeys
from parkcard.services.privileges import SCOPES, ServiceError
from parkcard.web.pages import (N_, back, changed_back, gettext, operator, refusable_page, refused_text, session_form,
                                state)

router = APIRouter()
PAGE = "/apikeys"


@router.get("/apikeys")
async def apikeys_page(request: Request, session=Depends(operator)):
    """Every API key, revoked ones too, and the API's address (privilege park.admin in the service)."""
    return await refusable_page(request, session, "apikeys.html",
                                lambda: apikeys.listing(state(request).store, session.actor), "keys",
                                scopes=sorted(SCOPES), api=str(request.base_url).rstrip("/") + API_PREFIX)


@router.post("/apikeys")
async def apikey_create(request: Request, session=Depends(operator)):
    """Create an API key with the scopes ticked; the next page shows its secret, once (the hub keeps its hash)."""
    form = await session_form(request, session)
    name = form.get("name", "")
    try:
        _key_id, secret = await apikeys.create(state(request).store, session.actor, name,
                                               [s for s in SCOPES if form.get("scope_" + s)])
    except ServiceError as exc:
        return back(PAGE, session, refused_text(request, session, exc), "error")
    return back(PAGE, session, gettext(request, session, "API key %(name)s is created: %(secret)s. Copy it now: it "
                                                         "is not shown again. Send it as the header "
                                                         "Authorization: Bearer <key>.")
                % {"name": name.strip(), "secret": secret})


@router.post("/apikeys/{name}/revoke")
async def apikey_revoke(request: Request, name: str, session=Depends(operator)):
    """Revoke an API key: the API refuses it from the next request on."""
    await session_form(request, session)
    return await changed_back(request, session, PAGE, lambda: apikeys.revoke(state(request).store, session.actor, name),
                              N_("API key %(name)s is revoked."), N_("API key %(name)s was revoked already."),
                              {"name": name})
