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


class Sentence:
    """An English sentence with %(name)s fields and their values kept apart: str() in English, worded() in any."""

    def __init__(self, message, **values):
        """message: the sentence in English; values fill its %(name)s fields."""
        self.message, self.values = message, values

    def __str__(self):
        return self.message % self.values if self.values else self.message

    def worded(self, gettext):
        """The message in the language of gettext (a catalog's lookup), with its values filled in."""
        translated = gettext(self.message)
        if not self.values:
            return translated
        return translated % {name: _worded(value, gettext) for name, value in self.values.items()}


class Explained(Sentence, ValueError):
    """A refusal with its English message and the values of its %(name)s fields kept apart."""

    def __init__(self, message, **values):
        """message: what went wrong and what to do, in English; values fill its %(name)s fields."""
        Sentence.__init__(self, message, **values)
        ValueError.__init__(self, str(self))


def _worded(value, gettext):
    # A refusal given as the reason (a rule's) and a word of the catalogs are said in the same language.
    if isinstance(value, Sentence):
        return value.worded(gettext)
    return gettext(value) if isinstance(value, Word) else value
