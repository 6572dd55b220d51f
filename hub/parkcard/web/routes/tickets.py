"""Ticket products: the park's list (what desks sell and gates admit) and a new one."""

from fastapi import APIRouter, Depends, Request

from parkcard.domain.tickets import TYPE_NAMES, TYPES_BY_NAME
from parkcard.services import tickets
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import (N_, amount, back, gettext, operator, optional_number, park_of, refusable_page,
                                refused_text, session_form, state)

router = APIRouter()
PAGE = "/tickets"
# What a page calls each ticket type (parkcard.domain.tickets.TYPES_BY_NAME's names).
TYPE_LABELS = {"day": N_("day ticket"), "multi-day": N_("multi-day ticket"), "count": N_("count card"),
               "period": N_("period card"), "timed": N_("timed ticket")}
# The product fields a form gives as whole numbers (empty: 0), with the label an error names.
NUMBER_FIELDS = (("area", N_("the area")), ("valid_days", N_("the days valid")), ("entries", N_("the entries")),
                 ("day_limit", N_("the entries per day")), ("included_min", N_("the minutes included")),
                 ("interval_min", N_("the minutes of an interval")))


@router.get("/tickets")
async def tickets_page(request: Request, session=Depends(operator)):
    """Every ticket product (privilege cards.query in the service)."""
    return await refusable_page(request, session, "tickets.html",
                                lambda: tickets.products(state(request).store, session.actor), "products",
                                type_names=TYPE_NAMES, types=list(TYPES_BY_NAME), labels=TYPE_LABELS)


@router.post("/tickets")
async def product_add(request: Request, session=Depends(operator)):
    """Create a ticket product (privilege tickets.manage and the audit entry in the service)."""
    form = await session_form(request, session)
    try:
        park = await park_of(request, session)
        numbers = {name: optional_number(form, name, gettext(request, session, label)) or 0
                   for name, label in NUMBER_FIELDS}
        price = amount(form, "price", gettext(request, session, "the price"), park)
        interval_price = (amount(form, "interval_price", gettext(request, session, "the price of an interval"), park)
                          if (form.get("interval_price") or "").strip() else 0)
        product_id = await tickets.add_product(state(request).store, session.actor, form.get("name", ""),
                                               form.get("type", ""), interval_price_cents=interval_price,
                                               price_cents=price, **numbers)
    except ServiceError as exc:
        return back(PAGE, session, refused_text(request, session, exc), "error")
    return back(PAGE, session, gettext(request, session, "Ticket product %(id)d is added.") % {"id": product_id})
