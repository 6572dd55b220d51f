"""Message catalogs (Babel, gettext .po files in locale/) and the operator's language.

The catalogs are read from their .po source and compiled in memory once per
process, so the package carries no compiled binaries that could drift from
their source. English is the source language (msgids); 简体中文 is zh_Hans.
"""

import functools
import io
from pathlib import Path

from babel.messages import mofile, pofile
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "messages"
DEFAULT_LOCALE = "en"
# The languages an operator may choose, with their names as their speakers write them.
LANGUAGES = {"en": "English", "zh_Hans": "简体中文"}
HTML_LANG = {"en": "en", "zh_Hans": "zh-Hans"}


def catalog_path(locale):
    """The .po file of a locale."""
    return LOCALE_DIR / locale / "LC_MESSAGES" / (DOMAIN + ".po")


@functools.lru_cache(maxsize=None)
def translations(locale):
    """The gettext translations of locale (the source language's for English or an unknown locale)."""
    if locale not in LANGUAGES or locale == DEFAULT_LOCALE:
        return NullTranslations()
    with open(catalog_path(locale), "rb") as source:
        catalog = pofile.read_po(source, locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    mofile.write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def negotiate(accept_language):
    """The LANGUAGES key an Accept-Language header prefers, else DEFAULT_LOCALE."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh_Hans"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LOCALE
