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
from engine.storage.database import make_engine, statement_timeout_setting, write_transaction
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
    # Every statement a request runs is bounded (docs/security.md, "Statement timeout").
    engine = make_engine(url, statement_timeout=statement_timeout_setting())
    live = LiveRuntime(url, engine=engine, policy_factory=CasbinAccessPolicy)
    with write_transaction(live.engine) as conn:  # roles as the applied metadata declares them
        sync_roles(conn, live.current().registry)
    return create_app(live, secret_key=load_secret_key(url), upload_dir=default_upload_dir(url),
                      banner=banner, https=https)


def serve(url: str, *, host: str = "127.0.0.1", port: int = 8000, out: TextIO,
          banner: str = "") -> None:
    import uvicorn

    app = build_app(url, banner=banner)
    out.write(f"serving {make_url(url).render_as_string(hide_password=True)} "
              f"on http://{host}:{port}/\n")
    out.flush()
    uvicorn.run(app, host=host, port=port, log_level="info")
