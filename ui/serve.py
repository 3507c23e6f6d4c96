"""Serve the app under uvicorn (``tidepool serve`` / ``tidepool demo``)."""

from __future__ import annotations

from typing import TextIO

from starlette.requests import Request

from engine.actor import Actor
from engine.runtime import open_runtime
from ui.app import create_app

PREVIEW_BANNER = ("Preview: records are read-only here until sign-in and forms land; "
                  "use the CLI to change data.")


def serve(url: str, *, host: str = "127.0.0.1", port: int = 8000, out: TextIO,
          demo: bool = False) -> None:
    import uvicorn

    runtime = open_runtime(url)

    def viewer(request: Request) -> Actor:
        return Actor.system("preview")

    app = create_app(runtime, resolve_actor=viewer, banner=PREVIEW_BANNER if demo else "")
    out.write(f"serving {url} on http://{host}:{port}/\n")
    out.flush()
    uvicorn.run(app, host=host, port=port, log_level="info")
