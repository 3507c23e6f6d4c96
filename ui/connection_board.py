"""How many connections each worker of one server holds, in a small file they all map.

Workers accept on one shared socket, and a worker that is already busy polls its
loop more often than an idle one wakes up, so left alone it wins every race for a
new connection and keeps it for the connection's life. ``ui.accept`` asks this board
whether another live worker holds fewer connections before it takes one; nginx's
``accept_mutex`` solves the same problem with a lock, this with a count.

The board is a file of fixed slots, one per worker: the worker's pid and its count,
both 32-bit. The supervising process creates it (``ConnectionBoard.create``) and
names it to the workers in ``$TIDEPOOL_CONNECTION_BOARD``; each worker claims a free
slot, or the slot of a worker that died, under an exclusive ``flock``, then writes
only its own slot. A count read while its owner writes it may be one behind; the
board steers, it does not lock, so that does no harm.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import tempfile
from pathlib import Path

BOARD_ENV = "TIDEPOOL_CONNECTION_BOARD"
_SLOT = struct.Struct("=ii")  # pid, open connections


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process took the pid: not our worker
        return False
    return True


class ConnectionBoard:
    """The slots of one server's workers, mapped from ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = open(self.path, "r+b")  # noqa: SIM115 (closed by close())
        self._map = mmap.mmap(self._file.fileno(), 0)
        self.slots = len(self._map) // _SLOT.size
        self._slot: int | None = None

    @classmethod
    def create(cls, workers: int) -> ConnectionBoard:
        """A new, empty board for ``workers`` workers (a file in shared memory where
        the system has it); the caller unlinks it with ``remove()``."""
        if workers < 1:
            raise ValueError("a board needs at least one slot")
        directory = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, path = tempfile.mkstemp(prefix="tidepool-connections-", dir=directory)
        try:
            os.ftruncate(fd, workers * _SLOT.size)
        finally:
            os.close(fd)
        return cls(path)

    @classmethod
    def from_environment(cls) -> ConnectionBoard | None:
        """The board the supervisor named, or None (one worker, or not under ``serve``)."""
        path = os.environ.get(BOARD_ENV)
        if not path:
            return None
        try:
            return cls(path)
        except (OSError, ValueError):  # gone (the server is stopping) or empty
            return None

    def claim(self, pid: int | None = None) -> bool:
        """Take a free slot (or a dead worker's) for ``pid`` (default: this process);
        False when every slot belongs to a live worker."""
        pid = os.getpid() if pid is None else pid
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        try:
            for slot in range(self.slots):
                owner, _ = _SLOT.unpack_from(self._map, slot * _SLOT.size)
                if owner == 0 or owner == pid or not _alive(owner):
                    _SLOT.pack_into(self._map, slot * _SLOT.size, pid, 0)
                    self._slot = slot
                    return True
            return False
        finally:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)

    @property
    def claimed(self) -> bool:
        return self._slot is not None

    def publish(self, count: int) -> None:
        """Write this worker's count of open connections into its slot."""
        if self._slot is not None:
            struct.pack_into("=i", self._map, self._slot * _SLOT.size + 4, count)

    def fewest_elsewhere(self) -> int | None:
        """The smallest count among the other live workers (None: there are none)."""
        fewest: int | None = None
        for slot in range(self.slots):
            if slot == self._slot:
                continue
            owner, count = _SLOT.unpack_from(self._map, slot * _SLOT.size)
            if owner and (fewest is None or count < fewest) and _alive(owner):
                fewest = count
        return fewest

    def release(self) -> None:
        """Give this worker's slot back (a stopping worker takes no more connections)."""
        if self._slot is not None:
            _SLOT.pack_into(self._map, self._slot * _SLOT.size, 0, 0)
            self._slot = None

    def close(self) -> None:
        self.release()
        self._map.close()
        self._file.close()

    def remove(self) -> None:
        """Close the board and delete its file (the supervisor, when the server stops)."""
        self.close()
        self.path.unlink(missing_ok=True)
