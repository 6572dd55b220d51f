"""Reports with charts: daily takings, sales by merchant and by terminal, top-ups and bonus, what the park owes."""

import time

from fastapi import APIRouter, Depends, Query, Request

from parkcard.services import reports, sales
from parkcard.services.privileges import ServiceError
from parkcard.web import charts
from parkcard.web.pages import N_, gettext, operator, park_of, refusal_page, render, state
from parkcard.web.routes.settlement import CHART_DAYS, CHART_DAYS_MAX, day_labels, recent_days, sales_chart

router = APIRouter()
# What the liabilities table calls each line (parkcard.store.rows.Liabilities' fields).
LIABILITY_LABELS = (("cards_cents", N_("Funds on cards (bonus included)")),
                    ("holds_cents", N_("Held for replaced cards")), ("deposits_cents", N_("Card deposits")),
                    ("pending_credits_cents", N_("Pending credits not yet on a card")),
                    ("merchants_cents", N_("Owed to merchants")))


def top_up_chart(rows, park, first_day, end_day, title, translate):
    """(SVG, legend) of the value loaded per day, stacked as cash paid and bonus given."""
    by_day = {r.day: r for r in rows}
    days = range(first_day, end_day + 1)
    series = [(translate(N_("paid")), [by_day[d].loaded_cents - by_day[d].bonus_cents if d in by_day else 0
                                       for d in days]),
              (translate(N_("bonus")), [by_day[d].bonus_cents if d in by_day else 0 for d in days])]
    return charts.stacked_bars(day_labels(first_day, end_day), series, park.money, title), charts.legend(series)


def liabilities_chart(owed_lines, park, title, translate):
    """(SVG, legend) of what the park owes now: one bar, stacked by the kind of liability."""
    series = [(translate(label), [max(cents, 0)]) for label, cents in owed_lines]
    return (charts.stacked_bars([translate(N_("now"))], series, park.money, title, axis_label=str),
            charts.legend(series))


def net_sales_chart(labels, net_cents, park, title, translate):
    """(SVG, legend) of net sales (sales less refunds or reversals) per label: a bar each, none below zero."""
    series = [(translate(N_("net sales")), [max(cents, 0) for cents in net_cents])]
    return charts.stacked_bars(labels, series, park.money, title, axis_label=str), charts.legend(series)


def terminal_chart(rows, park, title, translate):
    """(SVG, legend) of each terminal's net sales (sales less refunds) in the period."""
    return net_sales_chart(["%d %s" % (r.terminal_id, r.terminal_name) for r in rows],
                           [r.sales_cents - r.refunds_cents for r in rows], park, title, translate)


@router.get("/reports")
async def reports_page(request: Request, days: int = Query(CHART_DAYS, ge=1, le=CHART_DAYS_MAX),
                       session=Depends(operator)):
    """The last `days` days' reports and the liabilities now (privileges settlement.read, reports.view)."""
    store, actor = state(request).store, session.actor
    try:
        park = await park_of(request, session)
        now = time.time()
        offset_s, end_day, start_s = recent_days(park, days, now)
        end_s = int(now) + 1
        by_day = await sales.by_day(store, actor, start_s, end_s, offset_s)
        per_terminal = await reports.sales_by_terminal(store, actor, start_s, end_s)
        top_ups = await reports.top_ups_by_day(store, actor, start_s, end_s, offset_s)
        owed = await reports.liabilities(store, actor)
    except ServiceError as exc:
        return refusal_page(request, session, exc)

    def translate(text):
        return gettext(request, session, text)
    takings_title = translate(N_("Daily takings by merchant"))
    takings, takings_legend, by_merchant = sales_chart(by_day, park, days, end_day, takings_title)
    terminals_title = translate(N_("Net sales by terminal"))
    terminals, terminals_legend = terminal_chart(per_terminal, park, terminals_title, translate)
    top_up_title = translate(N_("Top-ups per day: paid and bonus"))
    top_up, top_up_legend = top_up_chart(top_ups, park, end_day - days + 1, end_day, top_up_title, translate)
    owed_lines = [(label, getattr(owed, name)) for name, label in LIABILITY_LABELS]
    owed_chart, owed_legend = liabilities_chart(owed_lines, park, translate(N_("Outstanding liabilities now")),
                                                translate)
    return render(request, "reports.html", session, park=park, days=days,
                  takings=takings, takings_legend=takings_legend, takings_title=takings_title,
                  by_merchant=by_merchant, terminals=terminals, terminals_legend=terminals_legend,
                  terminals_title=terminals_title, per_terminal=per_terminal, top_up=top_up,
                  top_up_legend=top_up_legend, top_up_title=top_up_title, top_ups=top_ups,
                  owed=owed_lines, owed_chart=owed_chart, owed_legend=owed_legend, owed_total=sum(v for _label, v in owed_lines),
                  day_of=lambda n: day_labels(n, n)[0])
