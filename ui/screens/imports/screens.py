"""Routes: /e/{entity}/import (upload), .../import/{token} (mapping + preview, then
progress), .../import/{token}/errors.csv (the rejected rows)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.errors import NotFoundError, ValidationError
from engine.messages import message_of
from engine.metadata.model import Entity
from engine.records.coerce import CoercionError
from engine.workflow.import_files import MAX_BYTES, ImportFileError, read_table
from engine.workflow.imports import ImportMode, match_columns
from ui.context import UIContext
from ui.i18n import N_
from ui.screens.imports import jobs
from ui.screens.records._common import entity_of

PREVIEW_ROWS = 10
#: The counts of the job row, as the progress panel names them.
COUNTS = {"total": N_("Rows"), "done": N_("Processed"), "created": N_("Created"),
          "updated": N_("Updated"), "skipped": N_("Skipped"), "rejected": N_("Rejected"),
          "warned": N_("Possible duplicates")}
MODES = ((ImportMode.INSERT, N_("Refuse rows whose key exists")),
         (ImportMode.SKIP, N_("Skip rows whose key exists")),
         (ImportMode.UPSERT, N_("Update records whose key exists")))


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    selected: bool


@dataclass(frozen=True)
class Column:
    header: str
    choices: tuple[Choice, ...]


@dataclass(frozen=True)
class Cell:
    text: str
    error: str


@dataclass(frozen=True)
class ImportView:
    title: str
    url: str
    list_url: str
    error: str = ""
    token: str = ""
    filename: str = ""
    rows: int = 0
    columns: tuple[Column, ...] = ()
    preview: tuple[tuple[int, tuple[Cell, ...]], ...] = ()
    modes: tuple[Choice, ...] = ()
    state: str = ""
    progress: tuple[tuple[str, object], ...] = ()
    percent: int = 0
    errors_url: str = ""
    warnings_url: str = ""
    failure: str = ""


def _base(ui: UIContext, request: Request, entity: Entity, **kw: object) -> ImportView:
    locale = ui.locale(request)
    return ImportView(title=ui.t(request, "Import %(what)s",
                                 what=entity.plural_label.get(locale)),
                      url=f"/e/{entity.name}/import", list_url=f"/e/{entity.name}",
                      **kw)  # type: ignore[arg-type]


def routes(ui: UIContext) -> list[BaseRoute]:
    def writable(request: Request, entity: Entity) -> dict[str, str]:
        """Field name -> label of the fields this user may fill."""
        runtime, actor = ui.runtime(), ui.actor(request)
        closed = runtime.policy.readonly_fields(actor, entity) | \
            runtime.policy.hidden_fields(actor, entity)
        plan = runtime.records.plan(entity.name)
        locale = ui.locale(request)
        return {f.name: f.label.get(locale) for f in entity.fields
                if f.name in plan.writable and f.name not in closed}

    def upload_form(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        runtime.policy.check_action(actor, entity, "create")
        return ui.render(request, "imports/upload.html", _base(ui, request, entity))

    def upload(request: Request, form: FormData | None) -> Response:
        assert form is not None
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        runtime.policy.check_action(actor, entity, "create")
        file = form.get("file")
        try:
            if not isinstance(file, UploadFile) or not file.filename:
                raise ImportFileError(ui.t(request, "Choose a .csv or .xlsx file."))
            data = file.file.read(MAX_BYTES + 1)
            table = read_table(data, filename=file.filename)
        except ImportFileError as exc:
            view = _base(ui, request, entity, error=ui.t(request, message_of(exc)))
            return ui.render(request, "imports/upload.html", view, status=422)
        upload = jobs.keep(actor, entity=entity.name, filename=file.filename, table=table)
        return ui.redirect(request, f"/e/{entity.name}/import/{upload.token}")

    def show(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        upload = jobs.find(request.path_params["token"], actor, entity.name)
        if upload is None:
            raise NotFoundError("import", request.path_params["token"])
        state, progress = jobs.progress_of(runtime.records, upload)
        if state != "idle" or upload.done.is_set():
            total = int(str(progress.get("total", upload.table.rows and len(upload.table.rows))))
            done = int(str(progress.get("done", 0)))
            view = _base(ui, request, entity, token=upload.token, filename=upload.filename,
                         rows=len(upload.table.rows), state=state,
                         progress=tuple((ui.t(request, label), progress[k])
                                        for k, label in COUNTS.items() if k in progress),
                         percent=100 * done // max(1, total),
                         errors_url=f"/e/{entity.name}/import/{upload.token}/errors.csv"
                         if upload.report and upload.report.rejected else "",
                         warnings_url=f"/e/{entity.name}/import/{upload.token}/warnings.csv"
                         if upload.warnings_csv else "",
                         failure=ui.t(request, upload.failure) if upload.failure else "")
            return ui.render(request, "imports/progress.html", view,
                             fragment="imports/_progress.html")
        return ui.render(request, "imports/mapping.html",
                         _mapping_view(request, entity, upload, writable(request, entity)))

    def _mapping_view(request: Request, entity: Entity, upload: jobs.Upload,
                      fields: dict[str, str], error: str = "",
                      chosen: dict[str, str] | None = None) -> ImportView:
        actor = ui.actor(request)
        if chosen is not None:  # "preview again" with the mapping the user adjusted
            mapping = chosen
        else:
            remembered = jobs.remembered(ui.runtime().records, actor, upload)
            mapping = {h: f for h, f in match_columns(entity, upload.table.headers,
                                                      remembered).items() if f in fields}
        skip = ui.t(request, N_("(do not import)"))
        columns = tuple(Column(h, (Choice("", skip, h not in mapping), *(
            Choice(name, label, mapping.get(h) == name) for name, label in fields.items())))
            for h in upload.table.headers)
        plan = ui.runtime().records.plan(entity.name)
        preview = []
        for line, cells in upload.table.rows[:PREVIEW_ROWS]:
            shown = []
            for header, text in zip(upload.table.headers, cells):
                message = ""
                name = mapping.get(header)
                if name is not None and text:
                    fp = plan.fields[name]
                    try:
                        value = fp.coerce_string(text)
                        message = (fp.check(value) or "") if value is not None else ""
                    except CoercionError as exc:
                        message = message_of(exc)  # keeps the template, so it translates
                shown.append(Cell(text, ui.t(request, message) if message else ""))
            preview.append((line, tuple(shown)))
        modes = tuple(Choice(m.value, ui.t(request, label), m is ImportMode.INSERT)
                      for m, label in MODES)
        return _base(ui, request, entity, token=upload.token, filename=upload.filename,
                     rows=len(upload.table.rows), columns=columns, preview=tuple(preview),
                     modes=modes, error=error)

    def run(request: Request, form: FormData | None) -> Response:
        assert form is not None
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        upload = jobs.find(request.path_params["token"], actor, entity.name)
        if upload is None:
            raise NotFoundError("import", request.path_params["token"])
        fields = writable(request, entity)
        mapping: dict[str, str] = {}
        for i, header in enumerate(upload.table.headers):
            name = str(form.get(f"col{i}") or "")
            if name and name in fields and name not in mapping.values():
                mapping[header] = name
        try:
            mode = ImportMode(str(form.get("mode") or "insert"))
        except ValueError:
            mode = ImportMode.INSERT
        if form.get("preview") == "1":
            view = _mapping_view(request, entity, upload, fields, chosen=mapping)
            return ui.render(request, "imports/mapping.html", view)
        if not mapping:
            view = _mapping_view(request, entity, upload, fields,
                                 error=ui.t(request, "Map at least one column to a field."))
            return ui.render(request, "imports/mapping.html", view, status=422)
        if mode is ImportMode.UPSERT:
            runtime.policy.check_action(actor, entity, "update")
        try:
            jobs.start(runtime.records, actor, upload, mapping=mapping, mode=mode,
                       dry_run=form.get("dry_run") == "1")
        except ValidationError as exc:
            view = _mapping_view(request, entity, upload, fields, error=str(exc))
            return ui.render(request, "imports/mapping.html", view, status=422)
        return ui.redirect(request, f"/e/{entity.name}/import/{upload.token}")

    def errors_csv(request: Request, form: FormData | None) -> Response:
        return report_csv(request, "errors")

    def warnings_csv(request: Request, form: FormData | None) -> Response:
        return report_csv(request, "warnings")

    def report_csv(request: Request, kind: str) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        upload = jobs.find(request.path_params["token"], actor, entity.name)
        data = None if upload is None else \
            upload.errors_csv if kind == "errors" else upload.warnings_csv
        if upload is None or not data:
            raise NotFoundError("import", request.path_params["token"])
        name = upload.filename.rsplit(".", 1)[0] + f".{kind}.csv"
        return Response(data, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(name)}"})

    return [
        Route("/e/{entity}/import", ui.endpoint(upload_form), methods=["GET"],
              name="import"),
        Route("/e/{entity}/import", ui.endpoint(upload), methods=["POST"],
              name="import_upload"),
        Route("/e/{entity}/import/{token}", ui.endpoint(show), methods=["GET"],
              name="import_show"),
        Route("/e/{entity}/import/{token}", ui.endpoint(run), methods=["POST"],
              name="import_run"),
        Route("/e/{entity}/import/{token}/errors.csv", ui.endpoint(errors_csv),
              methods=["GET"], name="import_errors"),
        Route("/e/{entity}/import/{token}/warnings.csv", ui.endpoint(warnings_csv),
              methods=["GET"], name="import_warnings"),
    ]


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
