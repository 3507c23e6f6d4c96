"""The key that signs session cookies and derives CSRF tokens.

Never hard-coded: ``TIDEPOOL_SECRET_KEY`` in the environment (at least 32
characters), or, for a SQLite database, a random key generated once into a file
next to the database file (``<db>.secret``, readable by its owner only) so a
demo or single-machine install keeps its sessions across restarts.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url

from engine.errors import TidepoolError

SECRET_KEY_ENV = "TIDEPOOL_SECRET_KEY"
MIN_SECRET_LENGTH = 32


def key_file_for(url: str) -> Path | None:
    """The key file beside a SQLite database file; None for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database \
            or parsed.database == ":memory:":
        return None
    return Path(parsed.database + ".secret")


def load_secret_key(url: str, *, environ: dict[str, str] | None = None) -> bytes:
    """The secret key for serving ``url`` (see the module docstring)."""
    env = os.environ if environ is None else environ
    configured = env.get(SECRET_KEY_ENV)
    if configured is not None:
        if len(configured) < MIN_SECRET_LENGTH:
            raise TidepoolError(f"{SECRET_KEY_ENV} must be at least {MIN_SECRET_LENGTH} "
                                "characters long")
        return configured.encode()
    path = key_file_for(url)
    if path is None:
        raise TidepoolError(f"set {SECRET_KEY_ENV} (a random string of at least "
                            f"{MIN_SECRET_LENGTH} characters) to serve {make_url(url).drivername}")
    if not path.exists():
        # O_EXCL: two workers starting at once must not write two different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
    key = path.read_text().strip()
    if len(key) < MIN_SECRET_LENGTH:
        raise TidepoolError(f"the key file {path} is too short; delete it to make a new one")
    return key.encode()
