"""EventJournal: append-only memory-mapped files of fixed records; one writer, any number of readers.

Layout
------
Files ``<dir>/<name>.<index:06d>.jnl`` in the run's data directory. Each starts with a
4096-byte header of little-endian int64 words, then ``capacity`` records of one dtype:

    word 0 magic ("HFTJRNL1")    1 format version     2 record size       3 dtype fingerprint
    word 4 capacity (records)    5 file index         6 base sequence     7 created (wall ns)
    word 16 (byte 128) committed: records fully written in this file (store-release after the bytes)
    word 32 (byte 256) sealed: 1 once the writer has created the next file and never writes here again

The static words are written once, before the file appears under its name (it is built as
``.tmp`` and renamed). Per append the writer touches only the record bytes (from byte 4096)
and ``committed``, which has bytes 128-255 to itself; ``sealed`` (written once) starts the next
128-byte block. Readers write nothing into journal files (their cursors are files of their own). Sequences are global and contiguous across files (file ``k+1`` starts at
``base_k + capacity_k``); the writer sets each record's ``seq`` field (the dtype's first field
must be a uint64 ``seq``, as every ``hftpipe.events`` dtype has).

Memory ordering: the writer copies the record bytes, then store-releases ``committed``; a reader
load-acquires ``committed`` and only then copies records below it (``hftpipe.shm.atomics``, in
``@njit`` helpers: plain numba loads/stores are not ordered, FIELD-NOTES). Sealing is also a
store-release, done only after the next file exists, so a reader that sees ``sealed`` finds it.

Writer
------
Single writer, enforced with ``flock`` on ``<dir>/<name>.lock`` (released by the kernel when the
process dies, SIGKILL included). Reopening continues after the last committed record; bytes of a
record that was being written beyond ``committed`` when a writer died are simply overwritten. A
writer never waits for readers: no back-pressure, files are kept until :func:`prune`.

Rollover: when a file is full, the next append creates the next file (posix_fallocate'd, so a
full disk is an ``OSError`` at the roll, never a SIGBUS in the middle of an append), then seals
the old one and unmaps it. Measured here (2 vCPU VM, 64 MiB files of 320-byte signals): an
append is ~0.6 us (a byte copy into the mapping + one numba call); the rolling append costs
~0.5-1 ms to create the file plus ~2 ms to unmap the old one (``mmap.close`` holds the GIL on
3.11, so a helper thread would not hide it). Independently of this code, first writes to a
file-backed mapping on ext4 stall now and then in the kernel (page_mkwrite/writeback: 5-18 ms
spikes a few times per 64 MiB, measured with a bare mmap too); on tmpfs they do not. A run
that wants the tightest tail puts its data directory on tmpfs and accepts losing the journals
on reboot (not on process crash).

Durability: records live in MAP_SHARED file pages, so every committed record survives the
writer's death (SIGKILL included) through the page cache. ``flush()`` (msync/fsync, slow)
extends that to a machine or kernel crash; it is optional and never on the hot path.

Readers
-------
Each named reader has a persisted cursor ``<dir>/cursors/<name>.<reader>.cursor``: one aligned
8-byte word (the next seq to deliver) in a mapped file, updated with a single store, so it is
never torn and survives SIGKILL of its process. ``poll`` hands out copies (never views into a
mapping) of committed records from the in-memory position onwards; ``commit`` persists progress.

Delivery guarantee: a restarted reader resumes exactly at its last ``commit``: records below
the committed cursor are never delivered again and none is skipped. A record delivered and acted
upon but not yet committed when the reader died is delivered again (at-least-once for the
in-flight record only): consumers either make their effect idempotent by ``seq`` (the graph's
MERGE keys, the executor's signal ids) or store it together with their cursor.

A new reader starts at the oldest record still on disk (0 unless pruned). Writer and reader
objects are not thread-safe: one thread per object. Only one handle per
reader name may be open at a time (``flock`` on the cursor file): a second is a JournalError.
A reader copes with a journal whose writer has not started (``poll`` returns nothing) and follows
the writer across files. The journal never interprets records: a record whose ``kind`` the
consumer does not know is the consumer's to count and skip (``hftpipe.events.kind_of``).

Errors
------
A file with a bad magic, another format version, another record layout (dtype fingerprint), a
truncated body or an impossible ``committed`` raises :class:`JournalError` naming the file; so do
a reader whose cursor points into pruned files and a second live writer.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import mmap
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numba import njit

from hftpipe.shm.atomics import load_acquire, store_release

JOURNAL_MAGIC = 0x314C4E524A544648  # b"HFTJRNL1" little-endian
JOURNAL_VERSION = 1
HEADER_BYTES = 4096
H_MAGIC, H_VERSION, H_RECORD_SIZE, H_FINGERPRINT, H_CAPACITY, H_FILE_INDEX, H_BASE_SEQ, H_CREATED = range(8)
H_COMMITTED = 16  # byte 128
H_SEALED = 32  # byte 256
DEFAULT_ROLL_BYTES = 64 << 20

_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
_READER_RE = re.compile(r"[A-Za-z0-9_.-]+")


class JournalError(RuntimeError):
    """A journal file is corrupt, of another layout, pruned under a reader, or already has a live writer."""


@njit(cache=True)
def _load_acq(words, i):
    return load_acquire(words, i)


@njit(cache=True)
def _store_rel(words, i, value):
    store_release(words, i, value)


@njit(cache=True)
def _publish(seqs, header, i, seq):
    """Stamp record ``i``'s seq, then store-release ``committed = i + 1``: one dispatch per append."""
    seqs[i] = seq
    store_release(header, H_COMMITTED, i + 1)


def dtype_fingerprint(dtype) -> int:
    """Stable 63-bit hash of a record layout (``dtype.descr`` and size): readers of another layout fail loudly."""
    dt = np.dtype(dtype)
    text = repr(dt.descr) + f"|{dt.itemsize}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def _check_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.names is None or dt.names[0] != "seq" or dt.fields["seq"][0] != np.dtype("<u8") or dt.fields["seq"][1]:
        raise TypeError(f"journal records need a uint64 'seq' as their first field, got {dt}")
    return dt


def _check_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"journal name {name!r}: use letters, digits, '_' and '-'")
    return name


def _file_path(directory: Path, name: str, index: int) -> Path:
    return directory / f"{name}.{index:06d}.jnl"


def _cursor_path(directory: Path, name: str, reader_name: str) -> Path:
    return directory / "cursors" / f"{name}.{reader_name}.cursor"


def journal_files(directory: str | os.PathLike, name: str) -> list[tuple[int, Path]]:
    """(index, path) of a journal's files, in order ([] if there are none yet)."""
    pat = re.compile(rf"^{re.escape(name)}\.(\d{{6}})\.jnl$")
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return []
    out = []
    for entry in entries:
        m = pat.match(entry)
        if m:
            out.append((int(m.group(1)), Path(directory) / entry))
    return sorted(out)


def _read_header(path: Path) -> np.ndarray:
    """The first 33 header words of a journal file, read with a plain read (FileNotFoundError passes)."""
    with open(path, "rb") as f:
        raw = f.read((H_SEALED + 1) * 8)
    if len(raw) < (H_SEALED + 1) * 8:
        raise JournalError(f"{path}: truncated journal file ({len(raw)} bytes)")
    words = np.frombuffer(raw, dtype="<i8")
    if int(words[H_MAGIC]) != JOURNAL_MAGIC:
        raise JournalError(f"{path}: not a journal file (bad magic)")
    return words


class _MappedFile:
    """One journal file, mapped; ``header`` (int64 words) and ``records`` are views of the mapping."""

    def __init__(self, path: Path, dtype: np.dtype, writable: bool):
        self.path = path
        self.mm = None
        self.header = None
        self.records = None
        self.raw = None
        self.itemsize = dtype.itemsize
        fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size < HEADER_BYTES:
                raise JournalError(f"{path}: truncated journal file ({size} bytes)")
            prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
            self.mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=prot)
        finally:
            os.close(fd)
        try:
            self.header = np.frombuffer(self.mm, dtype=np.int64, count=HEADER_BYTES // 8)
            h = [int(self.header[i]) for i in range(8)]
            if h[H_MAGIC] != JOURNAL_MAGIC:
                raise JournalError(f"{path}: not a journal file (bad magic)")
            if h[H_VERSION] != JOURNAL_VERSION:
                raise JournalError(f"{path}: journal format version {h[H_VERSION]}, this build reads {JOURNAL_VERSION}")
            if h[H_FINGERPRINT] != dtype_fingerprint(dtype) or h[H_RECORD_SIZE] != dtype.itemsize:
                raise JournalError(f"{path}: written with another record layout ({h[H_RECORD_SIZE]}-byte records, "
                                   f"fingerprint {h[H_FINGERPRINT]:#x}) than the reader's {dtype.itemsize}-byte {dtype}")
            self.capacity, self.index, self.base_seq = h[H_CAPACITY], h[H_FILE_INDEX], h[H_BASE_SEQ]
            m = re.search(r"\.(\d{6})\.jnl$", path.name)
            if self.capacity < 1 or self.base_seq < 0 or (m and int(m.group(1)) != self.index):
                raise JournalError(f"{path}: corrupt header (capacity {self.capacity}, index {self.index}, "
                                   f"base seq {self.base_seq})")
            if size < HEADER_BYTES + self.capacity * dtype.itemsize:
                raise JournalError(f"{path}: {size} bytes, shorter than its capacity of {self.capacity} records")
            committed = self.committed
            if not 0 <= committed <= self.capacity:
                raise JournalError(f"{path}: corrupt header (committed {committed} of capacity {self.capacity})")
            self.records = np.frombuffer(self.mm, dtype=dtype, count=self.capacity, offset=HEADER_BYTES)
            self.raw = np.frombuffer(self.mm, dtype=np.uint8)
        except BaseException:
            self.close()
            raise

    @classmethod
    def create(cls, path: Path, dtype: np.dtype, capacity: int, index: int, base_seq: int) -> _MappedFile:
        tmp = path.with_name(path.name[: -len(".jnl")] + ".tmp")
        size = HEADER_BYTES + capacity * dtype.itemsize
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_RDWR, 0o644)
        try:
            try:
                os.posix_fallocate(fd, 0, size)  # reserve the blocks: ENOSPC here, not SIGBUS later
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                os.ftruncate(fd, size)
            hdr = np.zeros(HEADER_BYTES // 8, dtype="<i8")
            hdr[[H_MAGIC, H_VERSION, H_RECORD_SIZE, H_FINGERPRINT, H_CAPACITY, H_FILE_INDEX, H_BASE_SEQ,
                 H_CREATED]] = [JOURNAL_MAGIC, JOURNAL_VERSION, dtype.itemsize, dtype_fingerprint(dtype),
                                capacity, index, base_seq, time.time_ns()]
            os.pwrite(fd, hdr.tobytes(), 0)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, path)  # atomic: no reader ever sees a half-initialised header
        return cls(path, dtype, writable=True)

    @property
    def committed(self) -> int:
        return int(_load_acq(self.header, H_COMMITTED))

    @property
    def sealed(self) -> bool:
        return bool(_load_acq(self.header, H_SEALED))

    @property
    def end_seq(self) -> int:
        return self.base_seq + self.capacity

    def copy_bytes(self, local: int, n: int) -> bytes:
        """The bytes of records ``local .. local+n-1``, copied out of the mapping."""
        start = HEADER_BYTES + local * self.itemsize
        return self.mm[start:start + n * self.itemsize]

    def close(self) -> None:
        """Unmap. The views are dropped first; if a caller still holds one (mmap.close raises
        BufferError), the mapping stays alive until that view dies instead of being yanked away."""
        self.header = None
        self.records = None
        self.raw = None
        mm, self.mm = self.mm, None
        if mm is not None:
            try:
                mm.close()
            except BufferError:
                pass


# --------------------------------------------------------------------------------------------
# Writer

class JournalWriter:
    """The single writer of a journal; reopening continues after the last committed record.

    Use :meth:`open`. Not thread-safe: one thread appends.
    """

    def __init__(self, directory: Path, name: str, dtype: np.dtype, roll_bytes: int):
        self.directory = directory
        self.name = name
        self.dtype = dtype
        self.roll_bytes = roll_bytes
        #: Records per file this writer creates (files from earlier runs keep their own capacity).
        self.capacity = max(1, (roll_bytes - HEADER_BYTES) // dtype.itemsize)
        self._lock_fd: int | None = None
        self._file: _MappedFile | None = None
        self._mm = self._header = self._records = self._seqs = None
        self._size = dtype.itemsize
        self._n = self._base = self._cap = 0
        self._unsynced: list[Path] = []

    @classmethod
    def open(cls, directory: str | os.PathLike, name: str, dtype,
             roll_bytes: int = DEFAULT_ROLL_BYTES) -> JournalWriter:
        """Create or reopen journal ``name`` in ``directory`` for writing.

        Files roll over at ``roll_bytes`` (header included). JournalError if another live
        process (or another handle in this one) is its writer, or if the files on disk are
        corrupt or of another record layout.
        """
        directory = Path(directory)
        dtype = _check_dtype(dtype)
        _check_name(name)
        if roll_bytes < HEADER_BYTES + dtype.itemsize:
            raise ValueError(f"roll_bytes {roll_bytes} cannot hold one {dtype.itemsize}-byte record after the "
                             f"{HEADER_BYTES}-byte header")
        directory.mkdir(parents=True, exist_ok=True)
        w = cls(directory, name, dtype, roll_bytes)
        lock_path = directory / f"{name}.lock"
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise JournalError(f"journal {directory / name} already has a live writer (pid {holder}, "
                               f"lock {lock_path})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        w._lock_fd = fd
        try:
            w._open_tail()
        except BaseException:
            w.close()
            raise
        return w

    def _open_tail(self) -> None:
        for tmp in self.directory.glob(f"{self.name}.*.tmp"):  # a roll interrupted by a crash
            tmp.unlink(missing_ok=True)
        files = journal_files(self.directory, self.name)
        if not files:
            self._attach(_MappedFile.create(_file_path(self.directory, self.name, 0), self.dtype,
                                            self.capacity, 0, 0))
            return
        self._attach(_MappedFile(files[-1][1], self.dtype, writable=True))
        if len(files) > 1:
            # A writer killed between creating this file and sealing the previous one: seal it now.
            prev = _MappedFile(files[-2][1], self.dtype, writable=True)
            try:
                if prev.end_seq != self._base or prev.index + 1 != self._file.index:
                    raise JournalError(f"{self._file.path}: does not continue {prev.path} (base seq {self._base}, "
                                       f"expected {prev.end_seq})")
                if not prev.sealed:
                    _store_rel(prev.header, H_SEALED, 1)
            finally:
                prev.close()
        if self._n >= self._cap:
            self._roll()

    def _attach(self, f: _MappedFile) -> None:
        self._file = f
        self._mm = f.mm
        self._header = f.header
        self._records = f.records
        self._seqs = f.records["seq"]
        self._n = f.committed
        self._base = f.base_seq
        self._cap = f.capacity

    def _detach(self) -> _MappedFile | None:
        f = self._file
        self._file = self._mm = self._header = self._records = self._seqs = None
        return f

    def _roll(self) -> None:
        old = self._file
        nxt = _MappedFile.create(_file_path(self.directory, self.name, old.index + 1), self.dtype,
                                 self.capacity, old.index + 1, old.end_seq)
        # Next file first, then seal: a reader that sees ``sealed`` always finds the next file.
        _store_rel(old.header, H_SEALED, 1)
        self._unsynced.append(old.path)
        self._detach()
        self._attach(nxt)
        old.close()

    @property
    def next_seq(self) -> int:
        """Sequence the next append gets (= number of records ever committed to this journal)."""
        return self._base + self._n

    def append(self, record) -> int:
        """Append one record (np.void, 1-element array of the journal's dtype, or a tuple); returns its seq."""
        if self._n >= self._cap:
            self._roll()
        i = self._n
        seq = self._base + i
        dt = getattr(record, "dtype", None)
        if dt is None:
            self._records[i] = record  # a tuple, field by field
        else:
            if dt is not self.dtype and dt != self.dtype:
                raise TypeError(f"journal {self.name} holds {self.dtype}, got a record of {dt}")
            if getattr(record, "size", 1) != 1:
                raise ValueError(f"append takes one record, got {record.size}: use append_many")
            off = HEADER_BYTES + i * self._size
            # A byte copy into the mapping (~50 ns); numpy's structured assignment is ~5 us.
            self._mm[off:off + self._size] = record if record.flags.c_contiguous else record.copy()
        _publish(self._seqs, self._header, i, seq)  # the bytes above become visible before committed
        self._n = i + 1
        return seq

    def append_many(self, records: np.ndarray) -> int:
        """Append an array of records, one release store per file touched; returns the last seq (-1 if empty)."""
        if records.dtype is not self.dtype and records.dtype != self.dtype:
            raise TypeError(f"journal {self.name} holds {self.dtype}, got records of {records.dtype}")
        records = records.reshape(-1)
        last = -1
        pos = 0
        n = len(records)
        while pos < n:
            if self._n >= self._cap:
                self._roll()
            i = self._n
            take = min(n - pos, self._cap - i)
            off = HEADER_BYTES + i * self._size
            self._mm[off:off + take * self._size] = np.ascontiguousarray(records[pos:pos + take])
            self._seqs[i:i + take] = np.arange(self._base + i, self._base + i + take, dtype=np.uint64)
            _store_rel(self._header, H_COMMITTED, i + take)
            self._n = i + take
            last = self._base + i + take - 1
            pos += take
        return last

    def flush(self) -> None:
        """Make every committed record durable against a machine crash (msync + fsync; slow, optional)."""
        self._file.mm.flush()
        for path in self._unsynced:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # pruned meanwhile
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._unsynced.clear()
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def prune(self, before_seq: int | None = None) -> list[Path]:
        """:func:`prune` this journal."""
        return prune(self.directory, self.name, self.dtype, before_seq)

    def close(self) -> None:
        """Unmap and release the writer lock (idempotent). Committed records stay readable."""
        f = self._detach()
        if f is not None:
            f.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Readers

class _View:
    """Sequential read access from a position, following the writer across files; no cursor."""

    def __init__(self, directory: Path, name: str, dtype: np.dtype):
        self.directory = directory
        self.name = name
        self.dtype = dtype
        self._file: _MappedFile | None = None  # the file poll() reads from
        self._tail: _MappedFile | None = None  # the newest file, for end_seq()
        #: Next seq poll() hands out.
        self.delivered_upto = 0

    def _open_index(self, index: int) -> _MappedFile | None:
        try:
            return _MappedFile(_file_path(self.directory, self.name, index), self.dtype, writable=False)
        except FileNotFoundError:
            return None

    def _set_file(self, f: _MappedFile) -> None:
        old, self._file = self._file, f
        if old is not None:
            old.close()

    def earliest_seq(self) -> int:
        """The oldest sequence still on disk (0 if the journal has no file yet)."""
        for _, path in journal_files(self.directory, self.name):
            try:
                return int(_read_header(path)[H_BASE_SEQ])
            except FileNotFoundError:
                continue  # pruned between listing and reading
        return 0

    def _locate(self, seq: int) -> _MappedFile | None:
        """The file holding ``seq``, or None if no record ``seq`` can exist yet."""
        f = self._file
        if f is not None:
            if f.base_seq <= seq < f.end_seq:
                return f
            if seq == f.end_seq:
                if not f.sealed:
                    return None  # full but not rolled yet (the writer rolls at its next append)
                nxt = self._open_index(f.index + 1)
                if nxt is not None:
                    if nxt.base_seq != seq:
                        nxt.close()
                        raise JournalError(f"{_file_path(self.directory, self.name, f.index + 1)}: base seq "
                                           f"{nxt.base_seq}, expected {seq} after {f.path}")
                    self._set_file(nxt)
                    return nxt
        # Slow path: first poll, a jump, or a vanished successor: look at every file's header.
        spans = []
        for _, path in journal_files(self.directory, self.name):
            try:
                h = _read_header(path)
            except FileNotFoundError:
                continue
            spans.append((int(h[H_BASE_SEQ]), int(h[H_BASE_SEQ]) + int(h[H_CAPACITY]), path))
        if not spans:
            if seq > 0:
                raise JournalError(f"journal {self.directory / self.name}: no files, but seq {seq} was asked for")
            return None
        if seq < spans[0][0]:
            raise JournalError(f"journal {self.directory / self.name}: records {seq}..{spans[0][0] - 1} were "
                               f"pruned (oldest file {spans[0][2].name})")
        for base, end, path in spans:
            if base <= seq < end:
                try:
                    cand = _MappedFile(path, self.dtype, writable=False)
                except FileNotFoundError:
                    break
                self._set_file(cand)
                return cand
        if seq >= spans[-1][1]:
            if seq == spans[-1][1] and self._file is None:
                # Parked at the end of a full newest file: keep it, so the fast path sees the roll.
                try:
                    self._set_file(_MappedFile(spans[-1][2], self.dtype, writable=False))
                except FileNotFoundError:
                    pass
            return None  # past the newest file: not written yet
        raise JournalError(f"journal {self.directory / self.name}: no file holds seq {seq} (a file is missing)")

    def poll(self, max_n: int = 1024) -> np.ndarray:
        """A copy of up to ``max_n`` committed records from ``delivered_upto`` on (length 0 if none)."""
        # Records are copied as bytes: a structured ``.copy()``/``concatenate`` of these dtypes goes
        # field by field (~20x slower) and leaves the padding bytes uninitialised.
        buf = None
        want = max_n
        while want > 0:
            seq = self.delivered_upto
            f = self._locate(seq)
            if f is None:
                break
            local = seq - f.base_seq
            committed = f.committed  # acquire: the records below it are fully written
            if local >= committed:
                break
            take = min(want, committed - local)
            if buf is None:
                buf = bytearray(f.copy_bytes(local, take))
            else:
                buf += f.copy_bytes(local, take)
            self.delivered_upto = seq + take
            want -= take
        if buf is None:
            return np.empty(0, dtype=self.dtype)
        return np.frombuffer(buf, dtype=self.dtype)  # writable, owns its bytes, outlives the mapping

    def poll_into(self, out: np.ndarray) -> int:
        """Copy up to ``len(out)`` committed records into ``out`` (no allocation); returns how many."""
        if out.dtype != self.dtype:
            raise TypeError(f"out holds {out.dtype}, the journal {self.dtype}")
        raw = out.view(np.uint8) if out.ndim == 1 and out.flags.c_contiguous else None
        n = 0
        cap = len(out)
        while n < cap:
            seq = self.delivered_upto
            f = self._locate(seq)
            if f is None:
                break
            local = seq - f.base_seq
            committed = f.committed
            if local >= committed:
                break
            take = min(cap - n, committed - local)
            if raw is None:
                out[n:n + take] = f.records[local:local + take]
            else:
                start = HEADER_BYTES + local * f.itemsize
                raw[n * f.itemsize:(n + take) * f.itemsize] = f.raw[start:start + take * f.itemsize]
            self.delivered_upto = seq + take
            n += take
        return n

    def end_seq(self) -> int:
        """One past the newest committed record of the journal (0 when it has none)."""
        t = self._tail
        while True:
            if t is None:
                files = journal_files(self.directory, self.name)
                if not files:
                    return 0
                try:
                    t = self._tail = _MappedFile(files[-1][1], self.dtype, writable=False)
                except FileNotFoundError:
                    continue
            if not t.sealed:  # read sealed first: an unsealed file's committed is the end
                return t.base_seq + t.committed
            nxt = self._open_index(t.index + 1)
            if nxt is None:
                return t.base_seq + t.committed
            t.close()
            t = self._tail = nxt

    def wait(self, timeout_s: float, max_sleep_s: float = 0.001) -> bool:
        """Sleep with back-off (50 us doubling to ``max_sleep_s``) until a record past ``delivered_upto``
        is committed; False on timeout. Never blocks the writer."""
        deadline = time.monotonic() + timeout_s
        delay = 0.00005
        while True:
            if self.end_seq() > self.delivered_upto:
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, max_sleep_s)

    def _close_files(self) -> None:
        for attr in ("_file", "_tail"):
            f = getattr(self, attr)
            setattr(self, attr, None)
            if f is not None:
                f.close()


class JournalReader(_View):
    """One named reader of a journal with a crash-safe persisted cursor. Use :meth:`open`.

    ``poll`` delivers from an in-memory position (``delivered_upto``); ``commit`` persists
    progress; a restarted reader (or ``rewind()``) starts again at the persisted ``cursor``.
    """

    def __init__(self, directory: Path, name: str, dtype: np.dtype, reader_name: str, fd: int, mm: mmap.mmap):
        super().__init__(directory, name, dtype)
        self.reader_name = reader_name
        self.path = _cursor_path(directory, name, reader_name)
        self._fd: int | None = fd
        self._cursor_mm: mmap.mmap | None = mm
        self._cursor = np.frombuffer(mm, dtype=np.int64, count=1)
        self._committed = int(_load_acq(self._cursor, 0))

    @classmethod
    def open(cls, directory: str | os.PathLike, name: str, dtype, reader_name: str) -> JournalReader:
        """Open (or create) reader ``reader_name``; it resumes at its persisted cursor.

        A new reader starts at the oldest record on disk. The journal need not exist yet.
        JournalError if this reader is already open elsewhere, if the journal's files are of
        another layout, or if the cursor lies outside the journal (pruned, or a replaced journal).
        """
        directory = Path(directory)
        dtype = _check_dtype(dtype)
        _check_name(name)
        if not _READER_RE.fullmatch(reader_name):
            raise ValueError(f"reader name {reader_name!r}: use letters, digits, '_', '.', '-'")
        (directory / "cursors").mkdir(parents=True, exist_ok=True)
        path = _cursor_path(directory, name, reader_name)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalError(f"reader {reader_name!r} of journal {directory / name} is already open "
                               f"({path} is locked)") from None
        fresh = False
        r = None
        try:
            with _prune_lock(directory, name):  # no prune between choosing the start and storing it
                fresh = os.fstat(fd).st_size < 8
                if fresh:
                    os.ftruncate(fd, 8)
                r = cls(directory, name, dtype, reader_name, fd, mmap.mmap(fd, 8, flags=mmap.MAP_SHARED))
                files = journal_files(directory, name)
                if files:  # fail now, naming the file, if the layout differs
                    _MappedFile(files[0][1], dtype, writable=False).close()
                earliest = r.earliest_seq()
                if fresh:
                    r._store(earliest)
                elif r._committed < earliest:
                    raise JournalError(f"{path}: cursor {r._committed} points at pruned records (the oldest on disk "
                                       f"is {earliest})")
            r.delivered_upto = r._committed
            end = r.end_seq()
            if r._committed > end:
                raise JournalError(f"{path}: cursor {r._committed} is past the end of journal {directory / name} "
                                   f"({end} records): the journal was replaced or truncated")
        except BaseException:
            if r is not None:
                r.close(remove_cursor=fresh)
            else:
                if fresh:
                    path.unlink(missing_ok=True)
                os.close(fd)
            raise
        return r

    @property
    def cursor(self) -> int:
        """Persisted position: the next seq a restarted reader receives."""
        return self._committed

    def _store(self, value: int) -> None:
        _store_rel(self._cursor, 0, value)  # one aligned 8-byte store into the shared page
        self._committed = value

    def commit(self, upto_seq: int | None = None) -> None:
        """Persist progress: records up to and including ``upto_seq`` (default: all delivered) are done."""
        nxt = self.delivered_upto if upto_seq is None else int(upto_seq) + 1
        if nxt > self.delivered_upto:
            raise ValueError(f"cannot commit seq {nxt - 1}: only up to {self.delivered_upto - 1} delivered")
        if nxt < self._committed:
            raise ValueError(f"commit({upto_seq}) would move cursor {self._committed} backwards")
        self._store(nxt)

    def rewind(self) -> None:
        """Forget uncommitted deliveries: the next poll starts again at the persisted cursor."""
        self.delivered_upto = self._committed

    def lag(self) -> int:
        """Committed records of the journal this reader has not committed yet."""
        return self.end_seq() - self._committed

    def close(self, remove_cursor: bool = False) -> None:
        """Unmap and release the reader (idempotent); ``remove_cursor`` deletes its persisted cursor too
        (a cursor left behind pins every file after it against :func:`prune`)."""
        self._close_files()
        self._cursor = None
        mm, self._cursor_mm = self._cursor_mm, None
        if mm is not None:
            mm.close()
        if self._fd is not None:
            if remove_cursor:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _prune_lock:
    """Exclusive flock on the ``cursors`` directory itself (no extra file): prune vs. a reader choosing
    its start. Held for microseconds; never taken by the writer."""

    def __init__(self, directory: Path, name: str):
        self.path = directory / "cursors"

    def __enter__(self):
        self.path.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


# --------------------------------------------------------------------------------------------
# Whole-journal operations

def reader_cursors(directory: str | os.PathLike, name: str) -> dict[str, int]:
    """Persisted cursor of every reader of journal ``name`` (for status, lag and prune)."""
    directory = Path(directory)
    out = {}
    prefix = f"{name}."
    try:
        entries = os.listdir(directory / "cursors")
    except FileNotFoundError:
        return out
    for entry in entries:
        if entry.startswith(prefix) and entry.endswith(".cursor"):
            try:
                raw = (directory / "cursors" / entry).read_bytes()[:8]
            except FileNotFoundError:
                continue
            if len(raw) == 8:
                out[entry[len(prefix):-len(".cursor")]] = int.from_bytes(raw, "little", signed=True)
    return out


def remove_reader(directory: str | os.PathLike, name: str, reader_name: str) -> bool:
    """Delete a retired reader's cursor so it no longer holds back :func:`prune`; JournalError if it is open."""
    path = _cursor_path(Path(directory), name, reader_name)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JournalError(f"reader {reader_name!r} of journal {name} is open; close it first") from None
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)
    return True


def prune(directory: str | os.PathLike, name: str, dtype, before_seq: int | None = None) -> list[Path]:
    """Delete the oldest files whose records are all below ``before_seq`` (if given) and below every
    persisted reader cursor. Only sealed files, never the newest; returns the deleted paths.

    With no readers and no ``before_seq`` every sealed file goes: pass ``before_seq`` (or keep a
    cursor for every consumer, even one that has not started) to retain history.
    """
    directory = Path(directory)
    dtype = _check_dtype(dtype)
    removed = []
    with _prune_lock(directory, name):
        limit = before_seq if before_seq is not None else 2**63 - 1
        for seq in reader_cursors(directory, name).values():
            limit = min(limit, seq)
        files = journal_files(directory, name)
        for _, path in files[:-1]:
            f = _MappedFile(path, dtype, writable=False)  # validates the layout before deleting
            try:
                done = f.sealed and f.end_seq <= limit
            finally:
                f.close()
            if not done:
                break
            path.unlink()
            removed.append(path)
    return removed


def scan(directory: str | os.PathLike, name: str, dtype, start_seq: int | None = None,
         batch: int = 65536) -> Iterator[np.ndarray]:
    """Copies of the committed records from ``start_seq`` (default: the oldest on disk) to the end, in
    batches, without a cursor (restart reconciliation, rebuilds, tools). Stops where the writer is."""
    view = _View(Path(directory), _check_name(name), _check_dtype(dtype))
    try:
        view.delivered_upto = view.earliest_seq() if start_seq is None else start_seq
        while True:
            chunk = view.poll(batch)
            if not len(chunk):
                return
            yield chunk
    finally:
        view._close_files()
