"""POSIX shared-memory segments: naming, ownership, attachment and crash cleanup.

We map ``/dev/shm/<name>`` ourselves instead of using ``multiprocessing.shared_memory``: on
Python 3.11 every ``SharedMemory`` registers the segment with a resource tracker, which unlinks
it when *that* process exits, so a read-only attacher (``hftpipe status``) could destroy a live
pipeline's segments (FIELD-NOTES). Here only the owner ever unlinks, nothing is tracked behind
our back, and segments left by a crashed run are swept by the next run of the same data
directory (see ``RunLock``).

Names: ``hft_<dirtag>_<runid>_<kind>_<parts>`` where ``dirtag`` is a short hash of the data
directory's real path, so two pipelines with different data directories never touch each
other's segments, and a sweep removes exactly the leftovers of its own directory.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import mmap
import os
import re
import secrets
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SHM_DIR = Path("/dev/shm")
PREFIX = "hft"
PAGE_SIZE = mmap.PAGESIZE
_NAME_OK = re.compile(r"[^A-Za-z0-9.-]+")


class SegmentError(RuntimeError):
    """A shared-memory segment could not be created, attached or released."""


class RunActiveError(SegmentError):
    """Another live run holds the data directory."""


def data_dir_tag(data_dir: str | os.PathLike) -> str:
    """Short stable tag of a data directory, used in every segment name of its runs."""
    real = os.path.realpath(os.fspath(data_dir))
    return hashlib.blake2b(real.encode(), digest_size=4).hexdigest()


def new_run_id() -> str:
    """A fresh random run id (6 hex chars): unique enough per data directory."""
    return secrets.token_hex(3)


def segment_name(dir_tag: str, run_id: str, kind: str, *parts: str) -> str:
    """Build a segment name; venue and symbol parts are sanitised (``BTC/USDT`` -> ``BTC-USDT``)."""
    clean = [_NAME_OK.sub("-", p) for p in (kind, *parts)]
    name = "_".join([PREFIX, dir_tag, run_id, *clean])
    if len(name) > 200:
        raise SegmentError(f"segment name too long: {name!r}")
    return name


class Segment:
    """One mapped shared-memory segment; the creating process is its owner."""

    def __init__(self, name: str, mm: mmap.mmap, size: int, owner: bool, readonly: bool):
        self.name = name
        self.size = size
        self.owner = owner
        self.readonly = readonly
        self._mmap: mmap.mmap | None = mm

    @property
    def path(self) -> Path:
        return SHM_DIR / self.name

    @classmethod
    def create(cls, name: str, size: int) -> Segment:
        """Create, size and pre-fault a new segment; fails if the name exists."""
        if size <= 0:
            raise SegmentError(f"segment {name}: size must be positive, got {size}")
        size = -(-size // PAGE_SIZE) * PAGE_SIZE
        path = SHM_DIR / name
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        except FileExistsError:
            raise SegmentError(f"segment {name} already exists (left by a crashed run? sweep it)") from None
        try:
            os.ftruncate(fd, size)
            mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | _populate_flag(),
                           prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        os.close(fd)
        seg = cls(name, mm, size, owner=True, readonly=False)
        # First touch of every page here, never on the hot path (MAP_POPULATE may be ignored).
        view = np.frombuffer(mm, dtype=np.uint8)
        view[::PAGE_SIZE] = 0
        del view
        return seg

    @classmethod
    def attach(cls, name: str, readonly: bool = False) -> Segment:
        """Map an existing segment; never registers it with any tracker, never unlinks it."""
        path = SHM_DIR / name
        try:
            fd = os.open(path, os.O_RDONLY if readonly else os.O_RDWR)
        except FileNotFoundError:
            raise SegmentError(f"segment {name} does not exist (is the pipeline running?)") from None
        try:
            size = os.fstat(fd).st_size
            prot = mmap.PROT_READ if readonly else mmap.PROT_READ | mmap.PROT_WRITE
            mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | _populate_flag(), prot=prot)
        finally:
            os.close(fd)
        return cls(name, mm, size, owner=False, readonly=readonly)

    def array(self, dtype, offset: int = 0, count: int = -1) -> np.ndarray:
        """A numpy view on the segment; every view must be dropped before ``close()``."""
        if self._mmap is None:
            raise SegmentError(f"segment {self.name} is closed")
        arr = np.frombuffer(self._mmap, dtype=dtype, count=count, offset=offset)
        if self.readonly:
            arr.flags.writeable = False
        return arr

    def close(self) -> None:
        """Unmap; raises SegmentError while numpy views still use the mapping (instead of a later SIGSEGV)."""
        if self._mmap is None:
            return
        try:
            self._mmap.close()
        except BufferError:
            raise SegmentError(
                f"segment {self.name}: views still alive; drop every array built on it before close()"
            ) from None
        self._mmap = None

    def unlink(self) -> None:
        """Remove the name (owner only); mappings stay valid until closed."""
        if not self.owner:
            raise SegmentError(f"segment {self.name}: only its owner may unlink it")
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            log.warning("event=segment_already_gone name=%s", self.name)

    @property
    def closed(self) -> bool:
        return self._mmap is None


def _populate_flag() -> int:
    return getattr(mmap, "MAP_POPULATE", 0)


def list_segments(dir_tag: str | None = None) -> list[str]:
    """Names of hftpipe segments in /dev/shm, optionally only those of one data directory."""
    prefix = f"{PREFIX}_{dir_tag}_" if dir_tag else f"{PREFIX}_"
    try:
        return sorted(n for n in os.listdir(SHM_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def sweep_segments(dir_tag: str, keep_run_id: str | None = None) -> list[str]:
    """Unlink the segments of a data directory, except those of ``keep_run_id``; returns what was removed."""
    removed = []
    for name in list_segments(dir_tag):
        if keep_run_id and name.startswith(f"{PREFIX}_{dir_tag}_{keep_run_id}_"):
            continue
        try:
            os.unlink(SHM_DIR / name)
            removed.append(name)
        except FileNotFoundError:
            pass
    return removed


class RunLock:
    """Exclusive claim on a data directory for one run; sweeps a crashed run's segments on entry.

    The lock is an ``flock`` on ``<data_dir>/run.lock``: the kernel releases it when its holder
    dies, however it dies, so a lock we can take means no live run owns any segment of this
    directory and every such segment is a leftover.
    """

    def __init__(self, data_dir: str | os.PathLike, run_id: str | None = None):
        self.data_dir = Path(data_dir)
        self.run_id = run_id or new_run_id()
        self.dir_tag = data_dir_tag(self.data_dir)
        self.swept: list[str] = []
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock (RunActiveError if held), sweep leftovers, write run.json."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / "run.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                info = read_run_info(self.data_dir)
                raise RunActiveError(
                    f"data directory {self.data_dir} is in use by run {info.get('run_id')} (pid {info.get('pid')})"
                ) from None
            raise
        self._fd = fd
        self.swept = sweep_segments(self.dir_tag)
        if self.swept:
            log.warning("event=swept_stale_segments count=%d data_dir=%s", len(self.swept), self.data_dir)
        self.write_info({})
        return self

    def segment_name(self, kind: str, *parts: str) -> str:
        """Name of a segment of this run."""
        return segment_name(self.dir_tag, self.run_id, kind, *parts)

    def write_info(self, extra: dict) -> None:
        """Record this run (id, pid, segment names) in run.json for operator tools."""
        info = {"run_id": self.run_id, "pid": os.getpid(), "started_wall_s": time.time(),
                "dir_tag": self.dir_tag, **extra}
        tmp = self.data_dir / "run.json.tmp"
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, self.data_dir / "run.json")

    def release(self) -> None:
        """Sweep this run's own segments that are still named, then drop the lock."""
        if self._fd is None:
            return
        sweep_segments(self.dir_tag)
        try:
            (self.data_dir / "run.json").unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def read_run_info(data_dir: str | os.PathLike) -> dict:
    """The run.json of a data directory, or {} when no run has written one."""
    try:
        return json.loads((Path(data_dir) / "run.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
