"""The payment page's look: brand name, logo (uploaded or an address), colours, messages per
language, and the fields that style the providers' own pages."""

from __future__ import annotations

import hashlib
import re
from typing import Iterable, Mapping
from urllib.parse import unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from flask_wtf.file import FileField
from wtforms import StringField, TextAreaField
from wtforms.validators import ValidationError

from ..i18n import gettext as _
from ..i18n import lazy_gettext
from ..models import Asset, PageSettings
from .audit import audit
from .forms import AdminForm, Checkbox, problems, stripped
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
_ENCODED_DOT = re.compile("%2e", re.IGNORECASE)


def own_asset_url(url: str, assets_prefix: str) -> str | None:
    """``url`` as the path of one logo stored in the panel (``{assets_prefix}<sha256>``), read the
    way a browser and the server read it — ``\\`` as ``/``, ``%2e`` as a dot in dot segments, which
    are resolved, then percent-escapes decoded — or None when it names anything else (another page of this site).

    >>> own_asset_url("/psp/admin/assets/%2e%2e/users", "/psp/admin/assets/") is None
    True
    """
    unified = url.replace("\\", "/")
    parts = urlsplit(unified)
    if parts.scheme or parts.netloc or "?" in unified or "#" in unified:
        return None
    path = parts.path
    if not path.startswith("/"):
        return None
    # dot segments are resolved on the path as the browser has it (``%2e`` is a dot, ``%2f`` is not a
    # slash), then the server decodes what the browser asks for
    segments: list[str] = []
    given = path.split("/")[1:]
    for index, segment in enumerate(given):
        dots = _ENCODED_DOT.sub(".", segment)
        if dots in (".", ".."):
            if dots == ".." and segments:
                segments.pop()
            if index == len(given) - 1:
                segments.append("")  # RFC 3986: a final dot segment leaves a trailing slash
        else:
            segments.append(segment)
    normalised = unquote("/" + "/".join(segments))
    if not normalised.startswith(assets_prefix) or not _ASSET_KEY.fullmatch(normalised[len(assets_prefix):]):
        return None
    return normalised


def _brand_length(form, field) -> None:
    if len(field.data) > 128:
        raise ValidationError(_("The brand name has at most 128 characters."))


def _colour(form, field) -> None:
    if field.data and not _HEX.fullmatch(field.data):
        raise ValidationError(_("%(label)s must be a colour such as #1f5f99.", label=field.label.text))


def _message_length(form, field) -> None:
    if len(field.data) > MAX_MESSAGE:
        raise ValidationError(_("Messages have at most %(n)s characters.", n=MAX_MESSAGE))


def _look_value(form, field) -> None:
    if field.data and not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", field.data):
        raise ValidationError(_("%(field)s may only hold letters, digits, dots, dashes and underscores.",
                                field=_(field.label.text)))


def _logo_upload(max_bytes: int):
    """Validator of the logo field: the upload's first ``max_bytes`` + 1 bytes are read once, and
    kept as ``field.image`` = (bytes, content type) when they are an image this page accepts."""

    def check(form, field) -> None:
        upload = field.data
        data = upload.read(max_bytes + 1) if hasattr(upload, "read") else b""
        field.image, field.uploaded = None, bool(data)
        if not data:
            return
        if len(data) > max_bytes:
            raise ValidationError(_("The logo is too large (at most %(kb)s KB).", kb=max_bytes // 1024))
        content_type = sniff_image(data)
        if content_type is None:
            raise ValidationError(_("The logo must be a PNG, JPEG, GIF or WebP image."))
        field.image = (data, content_type)

    return check


def _logo_address(assets_prefix: str | None):
    """Validator of the logo address (unless a logo was uploaded): https, or a logo stored here,
    normalised (:func:`own_asset_url`)."""

    def check(form, field) -> None:
        if getattr(form.logo, "uploaded", False) or not field.data:
            return
        own = own_asset_url(field.data, assets_prefix) if assets_prefix is not None else None
        if own:
            field.data = own
        else:
            parts = urlsplit(field.data)
            if parts.scheme != "https" or not parts.hostname:
                field.errors.append(_("The logo address must start with https://, or be a logo uploaded here."))
        if len(field.data) > 512:
            field.errors.append(_("The logo address is too long."))

    return check


class PageForm(AdminForm):
    """The payment page form; :func:`page_form` adds a message field per language
    (``message-<locale>-<key>``) and a look field per provider that has one."""

    brand_name = StringField(lazy_gettext("Brand name"), filters=[stripped], validators=[_brand_length])
    primary_color = StringField(lazy_gettext("Main colour"), filters=[stripped], validators=[_colour])
    accent_color = StringField(lazy_gettext("Accent colour"), filters=[stripped], validators=[_colour])
    logo = FileField()
    logo_url = StringField(filters=[stripped])
    remove_logo = Checkbox()

    def messages(self, locales: Iterable[str]) -> dict[str, dict[str, str]]:
        """{locale: {key: message}} of the messages typed (blank ones left out)."""
        return {locale: {key: self[f"message-{locale}-{key}"].data for key in MESSAGE_KEYS
                         if self[f"message-{locale}-{key}"].data} for locale in locales}


def page_form(locales: Iterable[str], formdata: Mapping[str, str] | None = None, **data) -> PageForm:
    """The payment page form for the shop's ``locales``, bound to ``formdata`` (the request's
    form and files when None) or showing ``data``::

        form = page_form(["en", "fr"], {"brand_name": "Atelier", "message-fr-before": "Merci"})
    """
    class ShopPageForm(PageForm):
        pass

    for locale in locales:
        for key in MESSAGE_KEYS:
            setattr(ShopPageForm, f"message-{locale}-{key}", TextAreaField(filters=[stripped], validators=[_message_length]))
    for key, label in look_fields().values():
        setattr(ShopPageForm, key, StringField(label, filters=[stripped], validators=[_look_value]))
    return ShopPageForm.bound(formdata, data=data or None)


def page_form_data(row: PageSettings, locales: Iterable[str]) -> dict[str, str]:
    """What the page form shows for the stored settings (``page_form(locales, **page_form_data(row, locales))``)."""
    messages = row.messages or {}
    return {
        "brand_name": row.brand_name or "", "logo_url": row.logo_url or "",
        "primary_color": row.primary_color or "", "accent_color": row.accent_color or "",
        **{f"message-{locale}-{key}": (messages.get(locale) or {}).get(key, "")
           for locale in locales for key in MESSAGE_KEYS},
        **{key: (row.provider_look or {}).get(key, "") for key, _label in look_fields().values()},
    }


def save_page(session: Session, form: PageForm, actor: str, locales: Iterable[str], logo_url_for=None,
              max_logo_bytes: int = 512 * 1024) -> list[str]:
    """Validate and apply the page form (:func:`page_form`). Returns problems (nothing is saved
    then) or [] once saved and audited. ``logo_url_for(key)`` turns a stored asset into the URL
    buyers load it from.

    >>> save_page(db.session, page_form(["en"], {"brand_name": "Atelier"}), "owner@example.com", ["en"])
    []
    """
    form.validate(extra_validators={
        "logo": [_logo_upload(max_logo_bytes)],
        "logo_url": [_logo_address(logo_url_for("") if logo_url_for is not None else None)],
    })
    found = problems(form)
    if found:
        return found
    row = page_row(session)
    logo_url = form.logo_url.data
    image = getattr(form.logo, "image", None)
    if image is not None:
        asset = store_asset(session, *image)
        logo_url = logo_url_for(asset.key)
    if form.remove_logo.data:
        logo_url = ""
    messages = form.messages(locales)
    look = {key: form[key].data for key, _label in look_fields().values() if form[key].data}
    before = {"brand_name": row.brand_name, "logo_url": row.logo_url, "primary_color": row.primary_color,
              "accent_color": row.accent_color, "messages": row.messages or {}, "provider_look": row.provider_look or {}}
    row.brand_name = form.brand_name.data or None
    row.logo_url = logo_url or None
    row.primary_color = form.primary_color.data.lower() or None
    row.accent_color = form.accent_color.data.lower() or None
    row.messages = messages
    row.provider_look = look
    after = {"brand_name": row.brand_name, "logo_url": row.logo_url, "primary_color": row.primary_color,
             "accent_color": row.accent_color, "messages": messages, "provider_look": look}
    audit(session, actor, "page.update", "payment page",
          {"changed": sorted(k for k in after if before[k] != after[k])}, commit=False)
    session.commit()
    return []
