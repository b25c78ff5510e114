"""EventJournal: append-only memory-mapped files of fixed records; one writer, any number of readers.

Files ``<dir>/<name>.<index:06d>.jnl``. Each starts with a 4096-byte header of int64 words:

    0 magic  1 format version  2 record size  3 dtype fingerprint  4 capacity (records)
    5 file index  6 base sequence (global seq of record 0)  7 created (wall ns)
    16 committed: records fully written in this file (store-release after the bytes)
    32 sealed: 1 once the writer has created the next file and will never write here again

``committed`` and ``sealed`` sit 128 bytes from everything else so readers polling them never
share a cache-line pair with the static header. Sequences are global and contiguous across
files; the writer sets each record's ``seq``.

Durability: records live in MAP_SHARED file pages, so everything committed survives the
writer's death (SIGKILL included) via the page cache; ``flush()`` (msync) extends that to a
machine crash. A reader never blocks the writer: no back-pressure, files are kept until
``prune`` removes sealed files that every persisted reader cursor has passed.

Reader cursors (``<dir>/cursors/<name>.<reader>.cursor``) hold the next sequence to deliver,
updated with one aligned 8-byte store into a mapped file (never torn, survives SIGKILL). A
restarted reader resumes exactly at its last ``commit``: records below it are never delivered
again and none is skipped. A record delivered but not yet committed when the reader died is
delivered again: consumers make their effect idempotent by ``seq`` (the graph's MERGE keys, the
executor's signal ids) or commit together with it.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import re
import time
from pathlib import Path

import numpy as np
from numba import njit

from hftpipe.shm.atomics import load_acquire, store_release

JOURNAL_MAGIC = 0x314C4E524A544648  # b"HFTJRNL1"
JOURNAL_VERSION = 1
HEADER_BYTES = 4096
H_MAGIC, H_VERSION, H_RECORD_SIZE, H_FINGERPRINT, H_CAPACITY, H_FILE_INDEX, H_BASE_SEQ, H_CREATED = range(8)
H_COMMITTED = 16
H_SEALED = 32


class JournalError(RuntimeError):
    """A journal file is corrupt, of another dtype, or already has a live writer."""


@njit(cache=True)
def _load_acq(words, i):
    return load_acquire(words, i)


@njit(cache=True)
def _store_rel(words, i, value):
    store_release(words, i, value)


def dtype_fingerprint(dtype: np.dtype) -> int:
    """Stable 63-bit hash of a record layout: readers with another layout fail loudly."""
    text = repr(np.dtype(dtype).descr) + f"|{np.dtype(dtype).itemsize}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def _file_path(directory: Path, name: str, index: int) -> Path:
    return directory / f"{name}.{index:06d}.jnl"


def journal_files(directory: str | os.PathLike, name: str) -> list[tuple[int, Path]]:
    """(index, path) of a journal's files, in order."""
    pat = re.compile(rf"^{re.escape(name)}\.(\d{{6}})\.jnl$")
    out = []
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return []
    for entry in entries:
        m = pat.match(entry)
        if m:
            out.append((int(m.group(1)), Path(directory) / entry))
    return sorted(out)


class _MappedFile:
    """One journal file mapped with a header view and a records view."""

    def __init__(self, path: Path, dtype: np.dtype, writable: bool):
        self.path = path
        fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size < HEADER_BYTES:
                raise JournalError(f"{path}: truncated journal file ({size} bytes)")
            prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
            self.mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=prot)
        finally:
            os.close(fd)
        self.header = np.frombuffer(self.mm, dtype=np.int64, count=HEADER_BYTES // 8)
        self.records = None
        magic, record_size, fingerprint, self.capacity, self.index, self.base_seq = (
            int(self.header[i]) for i in (H_MAGIC, H_RECORD_SIZE, H_FINGERPRINT, H_CAPACITY, H_FILE_INDEX,
                                          H_BASE_SEQ))
        if magic != JOURNAL_MAGIC:
            self.close()
            raise JournalError(f"{path}: not a journal file (bad magic)")
        if fingerprint != dtype_fingerprint(dtype) or record_size != dtype.itemsize:
            self.close()
            raise JournalError(f"{path}: written with another record layout than {dtype}")
        if size < HEADER_BYTES + self.capacity * dtype.itemsize:
            self.close()
            raise JournalError(f"{path}: shorter than its capacity says")
        self.records = np.frombuffer(self.mm, dtype=dtype, count=self.capacity, offset=HEADER_BYTES)

    @classmethod
    def create(cls, path: Path, dtype: np.dtype, capacity: int, index: int, base_seq: int) -> _MappedFile:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.truncate(HEADER_BYTES + capacity * dtype.itemsize)
            hdr = np.zeros(HEADER_BYTES // 8, dtype=np.int64)
            hdr[[H_VERSION, H_RECORD_SIZE, H_FINGERPRINT, H_CAPACITY, H_FILE_INDEX, H_BASE_SEQ, H_CREATED]] = [
                JOURNAL_VERSION, dtype.itemsize, dtype_fingerprint(dtype), capacity, index, base_seq,
                time.time_ns()]
            hdr[H_MAGIC] = JOURNAL_MAGIC
            f.write(hdr.tobytes())
            f.flush()
            os.fsync(f.fileno())
        # Atomic rename: a reader never sees a half-initialised header.
        os.replace(tmp, path)
        return cls(path, dtype, writable=True)

    @property
    def committed(self) -> int:
        return int(_load_acq(self.header, H_COMMITTED))

    @property
    def sealed(self) -> bool:
        return bool(_load_acq(self.header, H_SEALED))

    def close(self) -> None:
        self.header = None
        self.records = None
        self.mm.close()


class JournalWriter:
    """The single writer of a journal; reopening continues after the last committed record."""

    def __init__(self, directory: Path, name: str, dtype: np.dtype, roll_bytes: int):
        self.directory = directory
        self.name = name
        self.dtype = np.dtype(dtype)
        self.capacity = max(1, (roll_bytes - HEADER_BYTES) // self.dtype.itemsize)
        self._lock_fd: int | None = None
        self._file: _MappedFile | None = None

    @classmethod
    def open(cls, directory: str | os.PathLike, name: str, dtype, roll_bytes: int = 64 << 20) -> JournalWriter:
        """Create or reopen a journal for writing; JournalError if another live writer holds it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        w = cls(directory, name, dtype, roll_bytes)
        fd = os.open(directory / f"{name}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JournalError(f"journal {directory / name} already has a live writer") from None
        w._lock_fd = fd
        try:
            w._open_tail()
        except BaseException:
            w.close()
            raise
        return w

    def _open_tail(self) -> None:
        files = journal_files(self.directory, self.name)
        if not files:
            self._file = _MappedFile.create(_file_path(self.directory, self.name, 0), self.dtype,
                                            self.capacity, 0, 0)
            return
        _, path = files[-1]
        f = _MappedFile(path, self.dtype, writable=True)
        self._file = f
        if f.committed >= f.capacity:
            self._roll()

    def _roll(self) -> None:
        old = self._file
        nxt = _MappedFile.create(_file_path(self.directory, self.name, old.index + 1), self.dtype,
                                 self.capacity, old.index + 1, old.base_seq + old.capacity)
        # Next file first, then seal: a reader that sees ``sealed`` always finds the next file.
        _store_rel(old.header, H_SEALED, 1)
        self._file = nxt
        old.close()

    @property
    def next_seq(self) -> int:
        """Sequence the next append will get (= number of records ever committed)."""
        return self._file.base_seq + self._file.committed

    def append(self, record) -> int:
        """Append one record (a 1-element array or np.void of the journal's dtype); returns its seq."""
        f = self._file
        i = f.committed
        if i >= f.capacity:
            self._roll()
            f = self._file
            i = 0
        seq = f.base_seq + i
        f.records[i] = record
        f.records[i]["seq"] = seq
        _store_rel(f.header, H_COMMITTED, i + 1)
        return seq

    def append_many(self, records: np.ndarray) -> int:
        """Append records with one commit per file touched; returns the last seq (-1 if empty)."""
        last = -1
        pos = 0
        n = len(records)
        while pos < n:
            f = self._file
            i = f.committed
            if i >= f.capacity:
                self._roll()
                continue
            take = min(n - pos, f.capacity - i)
            f.records[i:i + take] = records[pos:pos + take]
            f.records["seq"][i:i + take] = np.arange(f.base_seq + i, f.base_seq + i + take, dtype=np.uint64)
            _store_rel(f.header, H_COMMITTED, i + take)
            last = f.base_seq + i + take - 1
            pos += take
        return last

    def flush(self) -> None:
        """msync the current file: committed records survive a machine crash too."""
        self._file.mm.flush()

    def close(self) -> None:
        """Unmap and release the writer lock."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


class JournalReader:
    """One named reader of a journal with a persisted cursor."""

    def __init__(self, directory: Path, name: str, dtype: np.dtype, reader_name: str):
        self.directory = directory
        self.name = name
        self.dtype = np.dtype(dtype)
        self.reader_name = reader_name
        cursor_dir = directory / "cursors"
        cursor_dir.mkdir(parents=True, exist_ok=True)
        path = cursor_dir / f"{name}.{reader_name}.cursor"
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            if os.fstat(fd).st_size < 8:
                os.ftruncate(fd, 8)
            self._cursor_mm = mmap.mmap(fd, 8, flags=mmap.MAP_SHARED)
        finally:
            os.close(fd)
        self._cursor = np.frombuffer(self._cursor_mm, dtype=np.int64, count=1)
        self._file: _MappedFile | None = None
        self.delivered_upto = self.cursor  # next seq poll() will hand out

    @classmethod
    def open(cls, directory: str | os.PathLike, name: str, dtype, reader_name: str) -> JournalReader:
        """Open (or create) a reader; it resumes at its persisted cursor."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", reader_name):
            raise ValueError(f"reader name {reader_name!r}: use letters, digits, '_', '.', '-'")
        return cls(Path(directory), name, dtype, reader_name)

    @property
    def cursor(self) -> int:
        """Persisted position: the next seq a restarted reader would receive."""
        return int(self._cursor[0])

    def _locate(self, seq: int) -> _MappedFile | None:
        f = self._file
        if f is not None and f.base_seq <= seq < f.base_seq + f.capacity:
            return f
        for _, path in journal_files(self.directory, self.name):
            try:
                cand = _MappedFile(path, self.dtype, writable=False)
            except FileNotFoundError:
                continue  # pruned under us
            if cand.base_seq <= seq < cand.base_seq + cand.capacity:
                if self._file is not None:
                    self._file.close()
                self._file = cand
                return cand
            cand.close()
        return None

    def poll(self, max_n: int = 1024) -> np.ndarray:
        """Copies of up to ``max_n`` committed records after the last delivered one (possibly none)."""
        chunks = []
        want = max_n
        while want > 0:
            seq = self.delivered_upto
            f = self._locate(seq)
            if f is None:
                break
            local = seq - f.base_seq
            committed = f.committed
            if local >= committed:
                break
            take = min(want, committed - local)
            chunks.append(f.records[local:local + take].copy())
            self.delivered_upto = seq + take
            want -= take
        if not chunks:
            return np.empty(0, dtype=self.dtype)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def commit(self, upto_seq: int | None = None) -> None:
        """Persist progress: records up to and including ``upto_seq`` (default: all delivered) are done."""
        nxt = self.delivered_upto if upto_seq is None else upto_seq + 1
        if nxt > self.delivered_upto:
            raise ValueError(f"cannot commit seq {nxt - 1}: only {self.delivered_upto} delivered")
        self._cursor[0] = nxt

    def rewind(self) -> None:
        """Forget uncommitted deliveries: the next poll starts again at the persisted cursor."""
        self.delivered_upto = self.cursor

    def end_seq(self) -> int:
        """One past the last committed record of the journal (0 when it has none)."""
        files = journal_files(self.directory, self.name)
        if not files:
            return 0
        f = _MappedFile(files[-1][1], self.dtype, writable=False)
        try:
            return f.base_seq + f.committed
        finally:
            f.close()

    def lag(self) -> int:
        """Committed records this reader has not committed yet."""
        return self.end_seq() - self.cursor

    def wait(self, timeout_s: float) -> bool:
        """Sleep with back-off until records are available past the delivered ones, or time out."""
        deadline = time.monotonic() + timeout_s
        delay = 0.0005
        while True:
            if self.end_seq() > self.delivered_upto:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._cursor = None
        self._cursor_mm.close()


def prune(directory: str | os.PathLike, name: str, dtype, before_seq: int | None = None) -> list[Path]:
    """Delete sealed files whose records are all below ``before_seq`` and every persisted cursor."""
    directory = Path(directory)
    limit = before_seq if before_seq is not None else 2**63 - 1
    cursor_dir = directory / "cursors"
    if cursor_dir.exists():
        for path in cursor_dir.glob(f"{name}.*.cursor"):
            raw = path.read_bytes()[:8]
            if len(raw) == 8:
                limit = min(limit, int.from_bytes(raw, "little", signed=True))
    removed = []
    for _, path in journal_files(directory, name):
        f = _MappedFile(path, np.dtype(dtype), writable=False)
        try:
            done = f.sealed and f.base_seq + f.capacity <= limit
        finally:
            f.close()
        if not done:
            break
        path.unlink()
        removed.append(path)
    return removed
