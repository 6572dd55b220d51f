"""SQL written for both backends, made PostgreSQL's: `?` and `:name` placeholders become $1, $2, ..."""

import re

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def numbered(sql, params=()):
    """Return (sql with $n placeholders, args tuple) for `?` placeholders and a sequence, or `:name` and a dict."""
    if isinstance(params, dict):
        order = []

        def number(m):
            if m.group(1) not in order:
                order.append(m.group(1))
            return "$%d" % (order.index(m.group(1)) + 1)
        return _NAMED.sub(number, sql), tuple(params[name] for name in order)
    count = iter(range(1, 10000))
    return re.sub(r"\?", lambda _m: "$%d" % next(count), sql), tuple(params)
