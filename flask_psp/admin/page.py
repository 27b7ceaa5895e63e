"""The payment page's look: brand name, logo (uploaded or an address), colours, messages per
language, and the fields that style the providers' own pages."""

from __future__ import annotations

import hashlib
import re
from typing import Iterable, Mapping
from urllib.parse import unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..i18n import gettext as _
from ..models import Asset, PageSettings
from .audit import audit
from .providers import available_provider_classes

_HEX = re.compile(r"#[0-9a-fA-F]{6}")
MESSAGE_KEYS = ("before", "pending", "success", "cancel")
MAX_MESSAGE = 500
IMAGE_TYPES = {  # magic bytes → content type; SVG is refused (it can carry script)
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


def look_fields() -> dict[str, tuple[str, str]]:
    """{provider name: (key, label)} of the providers whose own page the panel styles
    (:attr:`~flask_psp.providers.base.Provider.look_field`)."""
    return {name: cls.look_field for name, cls in available_provider_classes() if cls.look_field}


def page_row(session: Session) -> PageSettings:
    row = session.scalar(select(PageSettings).order_by(PageSettings.id).limit(1))
    if row is None:
        row = PageSettings(messages={}, provider_look={}, notifications={})
        session.add(row)
        session.flush()
    return row


def sniff_image(data: bytes) -> str | None:
    for magic, content_type in IMAGE_TYPES.items():
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def store_asset(session: Session, data: bytes, content_type: str) -> Asset:
    key = hashlib.sha256(data).hexdigest()
    asset = session.scalar(select(Asset).where(Asset.key == key))
    if asset is None:
        asset = Asset(key=key, content_type=content_type, size=len(data), data=data)
        session.add(asset)
        session.flush()
    return asset


_ASSET_KEY = re.compile(r"[0-9a-f]{64}")


def own_asset_url(url: str, assets_prefix: str) -> str | None:
    """``url`` as the path of one logo stored in the panel (``{assets_prefix}<sha256>``), read the
    way a browser and the server read it — ``\\`` as ``/``, percent-escapes decoded (``%2e``),
    dot segments resolved — or None when it names anything else (another page of this site).

    >>> own_asset_url("/psp/admin/assets/%2e%2e/users", "/psp/admin/assets/") is None
    True
    """
    unified = url.replace("\\", "/")
    parts = urlsplit(unified)
    if parts.scheme or parts.netloc or "?" in unified or "#" in unified:
        return None
    path = unquote(parts.path)
    if not path.startswith("/"):
        return None
    segments: list[str] = []
    given = path.split("/")[1:]
    for index, segment in enumerate(given):
        if segment in (".", ".."):
            if segment == ".." and segments:
                segments.pop()
            if index == len(given) - 1:
                segments.append("")  # RFC 3986: a final dot segment leaves a trailing slash
        else:
            segments.append(segment)
    normalised = "/" + "/".join(segments)
    if not normalised.startswith(assets_prefix) or not _ASSET_KEY.fullmatch(normalised[len(assets_prefix):]):
        return None
    return normalised


def save_page(session: Session, form: Mapping[str, str], actor: str, locales: Iterable[str],
              logo: tuple[bytes, str] | None = None, logo_url_for=None, max_logo_bytes: int = 512 * 1024) -> list[str]:
    """Apply the page form. ``logo`` is an uploaded file's (bytes, filename); ``logo_url_for(key)``
    turns a stored asset into the URL buyers load it from."""
    problems: list[str] = []
    brand = (form.get("brand_name") or "").strip()
    if len(brand) > 128:
        problems.append(_("The brand name has at most 128 characters."))
    colors = {}
    for key, label in (("primary_color", _("Main colour")), ("accent_color", _("Accent colour"))):
        value = (form.get(key) or "").strip()
        if value and not _HEX.fullmatch(value):
            problems.append(_("%(label)s must be a colour such as #1f5f99.", label=label))
        colors[key] = value.lower() or None
    logo_url = (form.get("logo_url") or "").strip()
    new_asset = None
    if logo is not None and logo[0]:
        data = logo[0]
        if len(data) > max_logo_bytes:
            problems.append(_("The logo is too large (at most %(kb)s KB).", kb=max_logo_bytes // 1024))
        else:
            content_type = sniff_image(data)
            if content_type is None:
                problems.append(_("The logo must be a PNG, JPEG, GIF or WebP image."))
            else:
                new_asset = (data, content_type)
    elif logo_url:
        parts = urlsplit(logo_url)
        own = own_asset_url(logo_url, logo_url_for("")) if logo_url_for is not None else None
        if own:
            logo_url = own
        elif parts.scheme != "https" or not parts.hostname:
            problems.append(_("The logo address must start with https://, or be a logo uploaded here."))
        if len(logo_url) > 512:
            problems.append(_("The logo address is too long."))
    messages: dict[str, dict[str, str]] = {}
    for locale in locales:
        block = {}
        for key in MESSAGE_KEYS:
            value = (form.get(f"message-{locale}-{key}") or "").strip()
            if len(value) > MAX_MESSAGE:
                problems.append(_("Messages have at most %(n)s characters.", n=MAX_MESSAGE))
            if value:
                block[key] = value
        messages[locale] = block
    look = {}
    for _provider, (key, _label) in look_fields().items():
        value = (form.get(key) or "").strip()
        if value and not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", value):
            problems.append(_("%(field)s may only hold letters, digits, dots, dashes and underscores.", field=_(_label)))
        if value:
            look[key] = value
    if problems:
        return problems
    row = page_row(session)
    if new_asset is not None:
        asset = store_asset(session, *new_asset)
        logo_url = logo_url_for(asset.key)
    if form.get("remove_logo") in ("on", "1"):
        logo_url = ""
    before = {"brand_name": row.brand_name, "logo_url": row.logo_url, "primary_color": row.primary_color,
              "accent_color": row.accent_color, "messages": row.messages or {}, "provider_look": row.provider_look or {}}
    row.brand_name = brand or None
    row.logo_url = logo_url or None
    row.primary_color, row.accent_color = colors["primary_color"], colors["accent_color"]
    row.messages = messages
    row.provider_look = look
    after = {"brand_name": row.brand_name, "logo_url": row.logo_url, "primary_color": row.primary_color,
             "accent_color": row.accent_color, "messages": messages, "provider_look": look}
    audit(session, actor, "page.update", "payment page",
          {"changed": sorted(k for k in after if before[k] != after[k])}, commit=False)
    session.commit()
    return []
