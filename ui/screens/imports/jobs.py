"""Running imports: one background thread each, progress kept in the leased job row.

The page polls ``tp_job`` (kind ``import``, key = the import's token) for the
counts, so progress is what the database says, not what this process remembers.
Parsed tables and finished error reports stay in memory for the process's life
(bounded by ``KEEP``): an import is started and watched from one server.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial

from engine.actor import Actor
from engine.errors import TidepoolError
from engine.messages import message_of
from engine.records import RecordService
from engine.storage.database import write_transaction
from engine.storage.import_mappings import recall, remember
from engine.storage.jobs import acquire, list_jobs, release, renew
from engine.workflow.import_files import TableFile
from engine.workflow.imports import (
    ImportMode,
    ImportReport,
    error_report,
    run_import,
    warning_report,
)
from ui.i18n import translate

KIND = "import"
KEEP = 50
_TTL = dt.timedelta(minutes=10)


@dataclass
class Upload:
    """A parsed file waiting for its mapping, then its run."""

    token: str
    user_id: int | None
    entity: str
    filename: str
    table: TableFile
    report: ImportReport | None = None
    errors_csv: bytes = b""
    warnings_csv: bytes = b""
    failure: str = ""
    done: threading.Event = field(default_factory=threading.Event)


_LOCK = threading.Lock()
_UPLOADS: OrderedDict[str, Upload] = OrderedDict()


def keep(upload_of: Actor, *, entity: str, filename: str, table: TableFile) -> Upload:
    """Hold a parsed file under a fresh unguessable token."""
    upload = Upload(secrets.token_urlsafe(24), upload_of.user_id, entity, filename, table)
    with _LOCK:
        _UPLOADS[upload.token] = upload
        while len(_UPLOADS) > KEEP:
            _UPLOADS.popitem(last=False)
    return upload


def find(token: str, actor: Actor, entity: str) -> Upload | None:
    """The upload, only for the user who made it and for its entity."""
    with _LOCK:
        upload = _UPLOADS.get(token)
    if upload is None or upload.user_id != actor.user_id or upload.entity != entity:
        return None
    return upload


def start(records: RecordService, actor: Actor, upload: Upload, *, mapping: dict[str, str],
          mode: ImportMode, dry_run: bool) -> None:
    """Run the import in a thread; its progress goes to the job row."""
    engine = records.engine
    with write_transaction(engine) as conn:
        remember(conn, user_id=actor.user_id, entity=upload.entity,
                 headers=upload.table.headers, mapping=mapping)
    now = dt.datetime.now(dt.UTC)
    lease = acquire(engine, kind=KIND, key=upload.token, owner=f"user:{actor.user_id}",
                    now=now, ttl=_TTL)
    if lease is None:
        raise TidepoolError("this import is already running")

    def progress(report: ImportReport) -> None:
        nonlocal lease
        if lease is None:
            return
        with write_transaction(engine) as conn:
            lease = renew(conn, lease, now=dt.datetime.now(dt.UTC), ttl=_TTL,
                          progress=report.as_progress()) or lease

    def run() -> None:
        state, error = "done", None
        try:
            report = run_import(records, actor, entity=upload.entity, table=upload.table,
                                mapping=mapping, mode=mode, dry_run=dry_run,
                                progress=progress)
            upload.report = report
            in_language = partial(translate, actor.locale)
            upload.errors_csv = error_report(upload.table, report, translate=in_language)
            if report.warned:
                upload.warnings_csv = warning_report(upload.table, report,
                                                     translate=in_language)
        except TidepoolError as exc:
            state, error = "failed", message_of(exc)
            upload.failure = error
        finally:
            assert lease is not None
            release(engine, lease, now=dt.datetime.now(dt.UTC), state=state,
                    progress=upload.report.as_progress() if upload.report else None,
                    error=error)
            upload.done.set()

    threading.Thread(target=run, name=f"import-{upload.token[:6]}", daemon=True).start()


def remembered(records: RecordService, actor: Actor, upload: Upload) -> dict[str, str] | None:
    """The mapping confirmed earlier for this entity and header set (see
    engine/storage/import_mappings.py), to preselect on the mapping page."""
    with records.engine.connect() as conn:
        return recall(conn, user_id=actor.user_id, entity=upload.entity,
                      headers=upload.table.headers)


def progress_of(records: RecordService, upload: Upload) -> tuple[str, dict[str, object]]:
    """(state, progress) of the upload's job row."""
    with records.engine.connect() as conn:
        for job in list_jobs(conn, kind=KIND):
            if job.key == upload.token:
                return job.state, dict(job.progress or {})
    return "idle", {}
