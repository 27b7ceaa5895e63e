"""The merchant admin panel under ``{PSP_URL_PREFIX}/admin/``."""
