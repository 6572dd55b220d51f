"""Refusals a person reads, in any of the operator's languages.

An Explained error keeps its English message with %(name)s fields apart from
the fields' values: str() is the English sentence (the CLI, the logs, the
API's `message`), and a web page looks the message up in its own catalog and
fills in the same values. The web app's catalog test extracts every message
given to an Explained class, so a refusal written here is one a Chinese page
can show in Chinese. A value that is itself an Explained refusal (a rule's,
given as the reason), a Word of the catalogs (a card's status) or an amount
in Cents is said in the page's language, and the amount in the park's currency.
"""


class Word(str):
    """A value that is a word of the catalogs (a status, a state): a page shows it in its own language too."""


class Cents(int):
    """An amount of money a sentence names: "1250 cents" in English, said in the park's currency on a page."""

    def __str__(self):
        return "%d cents" % self


class Sentence:
    """An English sentence with %(name)s fields and their values kept apart: str() in English, worded() in any."""

    def __init__(self, message, **values):
        """message: the sentence in English; values fill its %(name)s fields."""
        self.message, self.values = message, values

    def __str__(self):
        return self.message % self.values if self.values else self.message

    def worded(self, gettext, money=None):
        """The message in the language of gettext (a catalog's lookup), with its values filled in; money: Cents ->
        text in the park's currency (None: "1250 cents")."""
        translated = gettext(self.message)
        if not self.values:
            return translated
        return translated % {name: _worded(value, gettext, money) for name, value in self.values.items()}


class Explained(Sentence, ValueError):
    """A refusal with its English message and the values of its %(name)s fields kept apart."""

    def __init__(self, message, **values):
        """message: what went wrong and what to do, in English; values fill its %(name)s fields."""
        Sentence.__init__(self, message, **values)
        ValueError.__init__(self, str(self))


def _worded(value, gettext, money):
    # A refusal given as the reason (a rule's), a word of the catalogs and an amount are said as the page says them.
    if isinstance(value, Sentence):
        return value.worded(gettext, money)
    if isinstance(value, Cents):
        return gettext("%(cents)d cents") % {"cents": value} if money is None else money(int(value))
    return gettext(value) if isinstance(value, Word) else value
