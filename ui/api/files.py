"""File fields over the API: upload for an opaque id, download through the record.

``POST /{entity}/files/{field}?name=report.pdf`` takes the file's bytes as the
body (its media type as ``Content-Type``), stores them under a key the server
chooses and answers ``201 {"upload_id", "name", "size", "content_type"}``. A
create or update then sets the field to ``{"upload_id": "..."}``; the records
service binds the upload to that record (engine/records/uploads.py). Records
show a file as ``{"name", "size", "content_type", "url"}``: the storage key
never leaves the server, and ``url`` is ``GET /{entity}/{id}/files/{field}``,
which answers only to readers of the record and the field.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from engine.actor import Actor
from engine.errors import NotFoundError, ValidationError
from engine.metadata.model import FieldType
from engine.runtime import Runtime
from ui.api.problems import Problem
from ui.screens.records import files

#: Longest file name kept (longer ones are cut; the stored name is never a path).
MAX_NAME = 200
#: Bytes kept in memory while an upload streams in, past which it spools to disk.
SPOOL = 1024 * 1024


def file_field(runtime: Runtime, entity: str, field: str) -> Any:
    found = runtime.registry.entity(entity)
    if not found.has_field(field) or found.field(field).type is not FieldType.FILE:
        raise Problem(404, f"{entity} has no file field {field!r}")
    return found.field(field)


async def receive_upload(request: Request, runtime: Runtime, actor: Actor, entity: str, *,
                         upload_dir: Path | None, max_bytes: int) -> dict[str, Any]:
    """Stream the body to a spool file (bounded), store it, register it; the answer body."""
    field = request.path_params["field"]
    definition = file_field(runtime, entity, field)
    # Who may not write the field is refused before a byte of the body is read.
    await run_in_threadpool(runtime.records.check_upload, actor, entity, field)
    if upload_dir is None:
        raise Problem(422, "some fields are not valid", kind="validation",
                      errors={field: "file uploads are not enabled on this server"})
    limit = min(max_bytes, definition.max_size) if definition.max_size else max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"the file is larger than {limit} bytes")
    name = files.clean_name(request.query_params.get("name", "")[:MAX_NAME * 4])
    with tempfile.SpooledTemporaryFile(max_size=SPOOL) as spool:
        size = 0
        async for chunk in request.stream():   # counted as it comes: no Content-Length to trust
            size += len(chunk)
            if size > limit:
                raise Problem(413, f"the file is larger than {limit} bytes")
            spool.write(chunk)
        spool.seek(0)

        def store() -> dict[str, Any]:
            try:
                value = files.store_upload(upload_dir, entity, definition, filename=name,
                                           content_type=request.headers.get("content-type", ""),
                                           stream=spool,  # type: ignore[arg-type]
                                           max_bytes=limit)
            except files.UploadRefused as exc:
                raise ValidationError(entity, {field: str(exc)}) from None
            try:
                token = runtime.records.register_upload(
                    actor, entity, field, storage_key=value["key"], name=value["name"],
                    size=value["size"], content_type=value["content_type"])
            except BaseException:
                files.discard(upload_dir, value)
                raise
            return {"upload_id": token, **{k: value[k] for k in ("name", "size",
                                                                 "content_type")}}

        return await run_in_threadpool(store)


def download(runtime: Runtime, actor: Actor, entity: str, record_id: int, field: str, *,
             upload_dir: Path | None) -> Response:
    """The file of a record the actor may read (a hidden field reads as no file)."""
    file_field(runtime, entity, field)
    record = runtime.records.get(actor, entity, record_id)
    path = files.stored_path(upload_dir, record.get(field))
    if path is None:
        raise NotFoundError(entity, f"{record_id}/files/{field}")
    return FileResponse(path, filename=files.clean_name(str(record[field].get("name", ""))),
                        media_type="application/octet-stream",
                        content_disposition_type="attachment")
