"""Refusals a person reads, in any of the operator's languages.

An Explained error keeps its English message with %(name)s fields apart from
the fields' values: str() is the English sentence (the CLI, the logs, the
API's `message`), and a web page looks the message up in its own catalog and
fills in the same values. The web app's catalog test extracts every message
given to an Explained class, so a refusal written here is one a Chinese page
can show in Chinese. A value that is itself an Explained refusal (a rule's,
given as the reason), or a Word of the catalogs (a card's status), is said in
the page's language too.
"""


class Word(str):
    """A value that is a word of the catalogs (a status, a state): a page shows it in its own language too."""


class Explained(ValueError):
    """A refusal with its English message and the values of its %(name)s fields kept apart."""

    def __init__(self, message, **values):
        """message: what went wrong and what to do, in English; values fill its %(name)s fields."""
        self.message, self.values = message, values
        super().__init__(message % values if values else message)

    def worded(self, gettext):
        """The message in the language of gettext (a catalog's lookup), with its values filled in."""
        translated = gettext(self.message)
        if not self.values:
            return translated
        return translated % {name: _worded(value, gettext) for name, value in self.values.items()}


def _worded(value, gettext):
    # A refusal given as the reason (a rule's) and a word of the catalogs are said in the same language.
    if isinstance(value, Explained):
        return value.worded(gettext)
    return gettext(value) if isinstance(value, Word) else value
