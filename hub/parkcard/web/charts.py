"""Charts drawn on the server as SVG (no script, nothing loaded from elsewhere): stacked bars by day."""

from markupsafe import Markup, escape

WIDTH = 720
HEIGHT = 260
MARGIN_LEFT = 90
MARGIN_BOTTOM = 40
MARGIN_TOP = 10
# Colour per series, in order; more series than colours reuse them.
COLOURS = ("#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#dc2626", "#ca8a04", "#4b5563")


def day_of_month(label):
    """A day's axis label: "2026-07-01" -> "07-01"."""
    return label[5:]


def stacked_bars(labels, series, value_text, title, axis_label=day_of_month):
    """An SVG of one bar per label, stacked by series [(name, [value per label])], values integers >= 0.

    value_text(v) words an axis value (the park's money); title names the chart for screen readers;
    axis_label(label) is what the axis shows under a bar.
    """
    totals = [sum(values[i] for _name, values in series) for i in range(len(labels))]
    top = max(totals, default=0) or 1
    # an empty chart has its zero line only: a scale up to one cent would tell of sales there are none of
    steps = (0, 0.5, 1) if any(totals) else (0,)
    plot_w, plot_h = WIDTH - MARGIN_LEFT - 10, HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    slot = plot_w / max(len(labels), 1)
    bar_w = max(slot * 0.7, 1)
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" class="chart" '
             'aria-label="%s"><title>%s</title>' % (WIDTH, HEIGHT, escape(title), escape(title))]
    for fraction in steps:
        y = MARGIN_TOP + plot_h * (1 - fraction)
        parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>' % (MARGIN_LEFT, WIDTH - 10, y, y))
        parts.append('<text x="%d" y="%.1f" text-anchor="end" class="axis">%s</text>'
                     % (MARGIN_LEFT - 6, y + 4, escape(value_text(int(top * fraction)))))
    for i, label in enumerate(labels):
        x = MARGIN_LEFT + i * slot + (slot - bar_w) / 2
        base = MARGIN_TOP + plot_h
        for n, (name, values) in enumerate(series):
            h = plot_h * values[i] / top
            if h <= 0:
                continue
            base -= h
            parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" class="bar">'
                         '<title>%s %s: %s</title></rect>' % (x, base, bar_w, h, COLOURS[n % len(COLOURS)],
                                                               escape(label), escape(name),
                                                               escape(value_text(values[i]))))
        parts.append('<text x="%.1f" y="%d" text-anchor="middle" class="axis">%s</text>'
                     % (x + bar_w / 2, HEIGHT - MARGIN_BOTTOM + 16, escape(axis_label(label))))
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(series):
    """[(name, colour)] of the series, in the chart's colours."""
    return [(name, COLOURS[n % len(COLOURS)]) for n, (name, _values) in enumerate(series)]
