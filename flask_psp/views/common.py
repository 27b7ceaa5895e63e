"""Helpers shared by the plugin's views: state, locale, page look, URLs."""

from __future__ import annotations

import re
from contextlib import contextmanager

from flask import current_app, g, render_template, request
from flask_babel import force_locale
from sqlalchemy import select

from ..extension import current_state
from ..i18n import best_locale, gettext, ngettext
from ..models import PageSettings
from ..money import format_amount


def buyer_locale(preferred: str | None = None) -> str:
    s = current_state()
    candidates = [preferred] + [lang for lang, _ in request.accept_languages]
    return best_locale(candidates, s.locales, s.default_locale)


def page_settings() -> PageSettings:
    row = current_state().db.session.scalar(select(PageSettings).limit(1))
    return row or PageSettings(messages={}, provider_look={})


def page_message(settings: PageSettings, key: str, locale: str) -> str | None:
    return ((settings.messages or {}).get(locale) or {}).get(key) or None


_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def safe_color(value: str | None) -> str | None:
    """Only ``#rrggbb`` reaches a page's CSS."""
    return value if value and _HEX.fullmatch(value) else None


def public_base() -> str:
    """``PSP_PUBLIC_URL`` or the request's own host, plus the blueprint prefix."""
    base = current_app.config.get("PSP_PUBLIC_URL") or request.host_url
    return base.rstrip("/") + current_app.config["PSP_URL_PREFIX"]


def render(template: str, locale: str, status: int = 200, **context):
    g.psp_locale = locale
    settings = context.pop("settings", None) or page_settings()
    with force_locale(locale):
        html = render_template(
            template,
            locale=locale,
            page=settings,
            primary_color=safe_color(settings.primary_color),
            page_message=lambda key: page_message(settings, key, locale),
            money=lambda amount, currency: format_amount(amount, currency, locale),
            _=gettext,
            gettext=gettext,
            ngettext=ngettext,
            **context,
        )
    return html, status


@contextmanager
def in_locale(locale: str):
    g.psp_locale = locale
    with force_locale(locale):
        yield
