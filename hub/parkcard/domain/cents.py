"""The one check of a whole amount (cents, basis points, seconds) the domain's rules take as input."""


def whole(value, what, error, minimum=0, maximum=None):
    """value when it is an int from minimum to maximum (None: no upper bound); else raise error(message)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum and (
            maximum is None or value <= maximum):
        return value
    bound = "from %d to %d" % (minimum, maximum) if maximum is not None else "of at least %d" % minimum
    raise error("%s must be a whole number %s, not %r" % (what, bound, value))
