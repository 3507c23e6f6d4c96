"""The web layer: screens, the JSON API and the admin over the engine (docs/ui.md).

Importing the package registers the ``id`` URL convertor (``ui.limits``) before
any module builds a route that uses it.
"""

from ui import limits as _limits  # noqa: F401  (registers {name:id})
