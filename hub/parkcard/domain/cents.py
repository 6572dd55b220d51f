"""The one check of a whole amount (cents, basis points, seconds) the domain's rules take as input."""

from parkcard.domain.explained import Explained, Word


def whole(value, what, error, minimum=0, maximum=None):
    """value when it is an int from minimum to maximum (None: no upper bound); else raise error: an Explained
    class (given the message and its values), or any other maker of an error from one sentence."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum and (
            maximum is None or value <= maximum):
        return value
    what = Word(what)       # the input's name: a page says it in its language when the catalog has it
    if maximum is None:
        refusal = Explained("%(what)s must be a whole number of at least %(minimum)d, not %(value)r",
                            what=what, minimum=minimum, value=value)
    else:
        refusal = Explained("%(what)s must be a whole number from %(minimum)d to %(maximum)d, not %(value)r",
                            what=what, minimum=minimum, maximum=maximum, value=value)
    if isinstance(error, type) and issubclass(error, Explained):
        raise error(refusal.message, **refusal.values)
    raise error(str(refusal))
