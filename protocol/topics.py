"""MQTT topic names (SPEC.md §5.1): each terminal owns parkcard/term-<id>/..."""

PREFIX = "parkcard/"
UP = "up"
STATUS = "status"
DOWN = "down"


def client_name(terminal_id):
    """The terminal's broker username and client id: term-<id>."""
    return "term-%d" % terminal_id


def topic(terminal_id, leaf):
    """Return parkcard/term-<id>/<leaf>."""
    return PREFIX + client_name(terminal_id) + "/" + leaf


def terminal_of(topic_name):
    """Return the terminal id named in a topic, or None for a foreign topic.

    Only the canonical spelling counts: ASCII digits without a leading zero
    (str.isdigit() also accepts "²" and "١", and int() reads "١" as 1, which
    would make another spelling of terminal 1's topic).
    """
    parts = topic_name.split("/")
    if len(parts) != 3 or parts[0] + "/" != PREFIX or not parts[1].startswith("term-"):
        return None
    digits = parts[1][5:]
    if not 0 < len(digits) <= 5 or digits[0] == "0":
        return None
    for ch in digits:
        if ch not in "0123456789":
            return None
    value = int(digits)
    return value if value <= 0xFFFF else None
