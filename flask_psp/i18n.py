"""The plugin's own translation domain (``flask_psp``), so a shop's catalogs and ours never clash."""

from __future__ import annotations

import os

from flask_babel import Domain

TRANSLATIONS = os.path.join(os.path.dirname(__file__), "translations")
domain = Domain(translation_directories=[TRANSLATIONS], domain="flask_psp")
gettext = domain.gettext
ngettext = domain.ngettext
lazy_gettext = domain.lazy_gettext
_ = gettext


def best_locale(candidates, supported, default: str) -> str:
    """First supported language among ``candidates`` ("fr-FR" matches "fr")."""
    for candidate in candidates:
        if not candidate:
            continue
        language = str(candidate).replace("-", "_").split("_")[0].lower()
        if language in supported:
            return language
    return default
