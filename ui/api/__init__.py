"""The JSON API under /api/v1 (see docs/api.md); ``build_api`` makes its sub-application."""

from ui.api.app import build_api

__all__ = ["build_api"]
