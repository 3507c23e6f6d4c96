"""Serve the app under uvicorn (``tidepool serve`` and ``tidepool demo``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from engine.permissions.policy_store import sync_roles
from engine.permissions.scopes import CasbinAccessPolicy
from engine.runtime import LiveRuntime
from engine.storage.database import write_transaction
from engine.workflow.scheduler import DEFAULT_INTERVAL, RuleScheduler
from ui.app import create_app
from ui.secret import load_secret_key

UPLOAD_DIR_ENV = "TIDEPOOL_UPLOAD_DIR"


def default_upload_dir(url: str) -> Path | None:
    """``$TIDEPOOL_UPLOAD_DIR``, else ``uploads/`` beside a SQLite database file."""
    configured = os.environ.get(UPLOAD_DIR_ENV)
    if configured:
        return Path(configured)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database \
            and parsed.database != ":memory:":
        return Path(parsed.database).resolve().parent / "uploads"
    return None


def build_app(url: str, *, banner: str = "", https: bool | None = None) -> Starlette:
    """The app for ``url`` with the real permission policy, key and upload directory."""
    live = LiveRuntime(url, policy_factory=CasbinAccessPolicy)
    with write_transaction(live.engine) as conn:  # roles as the applied metadata declares them
        sync_roles(conn, live.current().registry)
    return create_app(live, secret_key=load_secret_key(url), upload_dir=default_upload_dir(url),
                      banner=banner, https=https)


def serve(url: str, *, host: str = "127.0.0.1", port: int = 8000, out: TextIO,
          banner: str = "", rules_interval: float | None = DEFAULT_INTERVAL) -> None:
    """Serve until stopped; pool rules run every ``rules_interval`` seconds (None: never)."""
    import uvicorn

    app = build_app(url, banner=banner)
    live = app.state.ui.live
    scheduler = None
    if rules_interval:
        scheduler = RuleScheduler(lambda: live.current().records, interval=rules_interval)
        scheduler.start()
    out.write(f"serving {make_url(url).render_as_string(hide_password=True)} "
              f"on http://{host}:{port}/\n")
    out.flush()
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        if scheduler is not None:
            scheduler.stop()
