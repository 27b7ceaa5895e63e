"""Provider registry: one module per PSP, each a :class:`~flask_psp.providers.base.Provider`."""

from __future__ import annotations

from importlib import import_module

from .base import Provider

#: name -> "module:Class"; imported on first use so an unused provider costs nothing
_KNOWN = {
    "adyen": "flask_psp.providers.adyen:AdyenProvider",
    "hipay": "flask_psp.providers.hipay:HiPayProvider",
    "paypal": "flask_psp.providers.paypal:PayPalProvider",
    "payplug": "flask_psp.providers.payplug:PayPlugProvider",
    "sips": "flask_psp.providers.sips:SipsProvider",
}
_loaded: dict[str, type[Provider]] = {}


def provider_names() -> list[str]:
    return list(_KNOWN)


def get_provider_class(name: str) -> type[Provider]:
    if name not in _KNOWN:
        raise KeyError(name)
    if name not in _loaded:
        module_name, class_name = _KNOWN[name].split(":")
        _loaded[name] = getattr(import_module(module_name), class_name)
    return _loaded[name]


def register(name: str, dotted: str) -> None:
    """Add a provider module at run time (``"package.module:Class"``)."""
    _KNOWN[name] = dotted
    _loaded.pop(name, None)
