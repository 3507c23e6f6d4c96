"""A throwaway PostgreSQL cluster started from the installed binaries.

CI runs as root and PostgreSQL refuses to run as root, so when we are root the
cluster's directory is handed to an unprivileged user (``postgres`` if it
exists, else ``nobody``) and initdb/pg_ctl run as that user through runuser.
The server listens on 127.0.0.1 only, on a free port, with fsync off (the data
is thrown away after the run).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class ClusterError(RuntimeError):
    pass


def find_bindir() -> Path:
    explicit = os.environ.get("TIDEPOOL_PG_BINDIR")
    candidates = [explicit] if explicit else []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                             check=False)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    raise ClusterError("PostgreSQL server binaries (initdb, pg_ctl) not found; "
                       "install them or set TIDEPOOL_PG_BINDIR")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise ClusterError("running as root and no unprivileged user to run PostgreSQL as")


@dataclass
class Cluster:
    bindir: Path
    root: Path
    port: int
    user: str | None
    superuser: str = "tidepool"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.superuser}@127.0.0.1:{self.port}/{dbname}"

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        return ["runuser", "-u", self.user, "--", *cmd] if self.user else cmd

    def start(self) -> None:
        if self.user:
            shutil.chown(self.root, user=self.user)
            os.chmod(self.root, 0o700)
        subprocess.run(
            self._cmd("initdb", "-D", str(self.datadir), "-U", self.superuser, "-A", "trust",
                      "-E", "UTF8", "--locale=C", "--no-sync"),
            check=True, capture_output=True,
        )
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                f"-c unix_socket_directories={self.root} -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                f"-c shared_buffers=256MB -c jit=off")
        result = subprocess.run(
            self._cmd("pg_ctl", "-D", str(self.datadir), "-o", opts, "-l",
                      str(self.root / "server.log"), "-w", "-t", "60", "start"),
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            log = (self.root / "server.log")
            raise ClusterError(f"pg_ctl start failed: {result.stderr}\n"
                               f"{log.read_text() if log.exists() else ''}")

    def stop(self) -> None:
        subprocess.run(self._cmd("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "stop"),
                       capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> Cluster:
    root = Path(tempfile.mkdtemp(prefix="tidepool-pg-"))
    cluster = Cluster(bindir=find_bindir(), root=root, port=_free_port(), user=_run_as())
    cluster.start()
    return cluster
