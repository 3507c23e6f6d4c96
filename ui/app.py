"""The Starlette application: server-rendered pages over the records service.

This is the read-only preview that the demo serves until the generic screens
land (list with keyset pages and search, detail with the activity feed). Route
handlers parse, make one service call, render; no SQL here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from engine.actor import Actor
from engine.errors import ForbiddenError, NotFoundError, TidepoolError
from engine.records.query import ListQuery
from engine.runtime import Runtime
from ui.views import detail_view, home_view, list_view

HERE = Path(__file__).resolve().parent

ActorResolver = Callable[[Request], Actor]


def _locale(request: Request) -> str:
    """?lang= wins, then the browser's Accept-Language; metadata labels follow it."""
    lang = request.query_params.get("lang")
    if lang in ("zh-CN", "en"):
        return lang
    return "zh-CN" if "zh" in request.headers.get("accept-language", "") else "en"


def _templates() -> Environment:
    return Environment(loader=FileSystemLoader(HERE / "templates"),
                       autoescape=select_autoescape(["html"]), auto_reload=False)


def create_app(runtime: Runtime, *, resolve_actor: ActorResolver,
               banner: str = "") -> Starlette:
    """Build the app; ``resolve_actor`` tells who is asking (login arrives with the UI issue)."""
    env = _templates()

    def render(name: str, request: Request, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(banner=banner, locale=_locale(request), **context)
        return HTMLResponse(html, status_code=status)

    async def home(request: Request) -> HTMLResponse:
        return render("pages/home.html", request,
                      view=home_view(runtime.registry, locale=_locale(request)))

    async def entity_list(request: Request) -> HTMLResponse:
        entity = _entity(request)
        actor = resolve_actor(request)
        query = ListQuery(search=request.query_params.get("q") or None,
                          after=request.query_params.get("after") or None)
        page = runtime.records.list(actor, entity.name, query)
        return render("pages/list.html", request,
                      view=list_view(entity, page, locale=_locale(request),
                                     search=query.search or ""))

    async def entity_detail(request: Request) -> HTMLResponse:
        entity = _entity(request)
        actor = resolve_actor(request)
        try:
            record_id = int(request.path_params["record_id"])
        except ValueError:
            raise HTTPException(404) from None
        record = runtime.records.get(actor, entity.name, record_id)
        feed = runtime.records.activity(actor, entity.name, record_id)
        return render("pages/detail.html", request,
                      view=detail_view(entity, record, feed, locale=_locale(request)))

    def _entity(request: Request) -> Any:
        name = request.path_params["entity"]
        if name not in runtime.registry.entities:
            raise HTTPException(404)
        return runtime.registry.entity(name)

    async def not_found(request: Request, exc: Exception) -> HTMLResponse:
        return render("pages/error.html", request, status=404, message="Not found")

    async def forbidden(request: Request, exc: Exception) -> HTMLResponse:
        return render("pages/error.html", request, status=403, message=str(exc))

    async def bad_request(request: Request, exc: Exception) -> HTMLResponse:
        return render("pages/error.html", request, status=400, message=str(exc))

    async def http_error(request: Request, exc: Exception) -> HTMLResponse:
        status = getattr(exc, "status_code", 500)
        return render("pages/error.html", request, status=status,
                      message=getattr(exc, "detail", "Error"))

    routes = [
        Route("/", home),
        Route("/e/{entity}", entity_list),
        Route("/e/{entity}/{record_id}", entity_detail),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={
        NotFoundError: not_found, ForbiddenError: forbidden, TidepoolError: bad_request,
        HTTPException: http_error,
    })
