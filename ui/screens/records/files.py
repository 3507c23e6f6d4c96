"""File fields: uploads stored on disk, downloads checked against the record.

An upload is stored under ``<upload_dir>/<entity>/<random hex>``: the stored
name never comes from the user, so no upload can reach another path. The
field's value keeps the original name, size, content type and that key. Limits:
the field's ``max_size`` and ``accept`` (checked here while streaming, and again
by the records service), and the app's ``max_upload_bytes``. Downloads need read
access to the record and the field, and are always sent as attachments.
"""

from __future__ import annotations

import secrets
import unicodedata
from pathlib import Path
from typing import Any, BinaryIO

from engine.metadata.model import Field

CHUNK = 64 * 1024


class UploadRefused(ValueError):
    """An upload the field does not take; the message is for the field."""


def accepted(accept: tuple[str, ...], content_type: str) -> bool:
    if not accept:
        return True
    for pattern in accept:
        if pattern.endswith("/*") and content_type.startswith(pattern[:-1]):
            return True
        if pattern == content_type:
            return True
    return False


def clean_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base)
                   if unicodedata.category(c)[0] != "C")
    return base.strip()[:200] or "file"


def store_upload(upload_dir: Path | None, entity: str, f: Field, *, filename: str,
                 content_type: str, stream: BinaryIO, max_bytes: int) -> dict[str, Any]:
    """Write the upload and return the field value; ``UploadRefused`` when it does not fit."""
    if upload_dir is None:
        raise UploadRefused("file uploads are not enabled on this server")
    content_type = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    if not accepted(f.accept, content_type):
        raise UploadRefused(f"file type must be one of {', '.join(f.accept)}")
    limit = min(max_bytes, f.max_size) if f.max_size is not None else max_bytes
    key = f"{entity}/{secrets.token_hex(16)}"
    target = upload_dir / key
    target.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    try:
        with target.open("xb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise UploadRefused(f"file is larger than {limit} bytes")
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return {"name": clean_name(filename), "size": size, "content_type": content_type, "key": key}


def discard(upload_dir: Path | None, value: dict[str, Any]) -> None:
    path = stored_path(upload_dir, value)
    if path is not None:
        path.unlink(missing_ok=True)


def stored_path(upload_dir: Path | None, value: Any) -> Path | None:
    """The file of a field value, only if it lies inside the upload directory."""
    if upload_dir is None or not isinstance(value, dict) or not isinstance(value.get("key"), str):
        return None
    root = upload_dir.resolve()
    try:
        path = (root / str(value["key"])).resolve()
        if root not in path.parents or not path.is_file():
            return None
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return None
    return path
