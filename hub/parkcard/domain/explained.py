"""Refusals a person reads, in any of the operator's languages.

An Explained error keeps its English message with %(name)s fields apart from
the fields' values: str() is the English sentence (the CLI, the logs, the
API's `message`), and a web page looks the message up in its own catalog and
fills in the same values. The web app's catalog test extracts every message
given to an Explained class, so a refusal written here is one a Chinese page
can show in Chinese.
"""


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
        # A value that is itself a refusal (a rule's, given as the reason) is worded in the same language.
        return translated % {name: value.worded(gettext) if isinstance(value, Explained) else value
                             for name, value in self.values.items()}
