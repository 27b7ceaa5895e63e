"""The merchant admin panel, at ``{PSP_URL_PREFIX}/admin/``. Thin views: the work is done in
:mod:`flask_psp.admin` (one module per page), :mod:`flask_psp.access`, :mod:`flask_psp.accounting`."""

from . import accounting, audit, auth, links, notifications, page, payments, providers, settlements, users  # noqa: F401  (routes register on import)
