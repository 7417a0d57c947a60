"""A dataset source as a set of files by relative POSIX path: a directory, or a tar archive read in one pass."""
from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import re
import tarfile
import zlib
from pathlib import Path

from harness.data.progress import Progress
from harness.errors import HarnessError

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
CHUNK = 1 << 20


def one_line(exc: BaseException) -> str:
    """An exception as message text that keeps a CLI error on one line.

    In-memory file objects are dropped from it: a message names its file by path, never as `<_io.BytesIO ...>`.
    """
    text = _OBJECT_REPR.sub("", str(exc))
    return " ".join(text.split()) or type(exc).__name__


_OBJECT_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>")


def _skipped(rel: str) -> bool:
    """Hidden files and macOS resource forks (._x.jpg, __MACOSX/) are not data, though some end in .jpg."""
    return any(part.startswith(".") or part == "__MACOSX" for part in rel.split("/"))


class Source:
    """Files of `path` (a directory or a .tar[.gz|.bz2|.xz] archive), addressed by relative POSIX path."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise HarnessError(f"{self.path}: no such file or directory")
        self.is_archive = self.path.is_file()
        if self.is_archive and not self.path.name.lower().endswith(ARCHIVE_SUFFIXES):
            raise HarnessError(f"{self.path}: expected a directory or a {', '.join(ARCHIVE_SUFFIXES)} archive")
        self._members: dict[str, bytes] | None = None
        self._files: list[str] | None = None

    def sha256(self, under: str = "") -> str:
        """sha256 of the archive file; for a directory, of the relative path and content of every file `under`."""
        digest = hashlib.sha256()
        if self.is_archive:
            with open(self.path, "rb") as f:
                while block := f.read(CHUNK):
                    digest.update(block)
            return digest.hexdigest()
        for rel in self.files():
            if not rel.startswith(under):
                continue
            digest.update(rel.encode() + b"\0")
            digest.update(hashlib.sha256(self.read(rel)).digest())
        return digest.hexdigest()

    def load(self, progress: Progress | None = None) -> None:
        """Read an archive's members into memory (one pass over the stream); directories are read on demand."""
        if not self.is_archive or self._members is not None:
            return
        members: dict[str, bytes] = {}
        size = self.path.stat().st_size
        try:
            with open(self.path, "rb") as raw:
                compression = _compression(raw)
                stream = _decompressed(raw, compression)
                with tarfile.open(fileobj=stream, mode="r|") as tar:
                    for info in tar:
                        rel = _norm(info.name)
                        if info.isfile() and not _skipped(rel):
                            members[rel] = tar.extractfile(info).read()
                            if progress is not None:
                                progress.update(raw.tell(), size)
                    if compression != "tar":
                        # tarfile stops at the end-of-archive blocks, before the end of the compressed stream:
                        # read the rest, so the decompressor reaches its trailer and checks the whole stream's
                        # CRC and length (a flipped bit or a cut anywhere is an error, not changed pixels).
                        while stream.read(CHUNK):
                            pass
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError, ValueError) as exc:
            raise HarnessError(f"{self.path}: truncated or corrupt archive ({one_line(exc)})") from None
        if compression == "tar" and not self._ends_with_eof_marker(size):
            raise HarnessError(f"{self.path}: truncated or corrupt archive (no end-of-archive marker)")
        if progress is not None:
            progress.update(size, size)
        self._members = members

    def _ends_with_eof_marker(self, size: int) -> bool:
        # An uncompressed tar cut at a member boundary reads as a shorter valid archive; POSIX tar ends with two
        # zero blocks, which a cut loses. (Compressed archives are caught by their decompressor's own check.)
        with open(self.path, "rb") as f:
            f.seek(max(0, size - 1024))
            tail = f.read()
        return len(tail) == 1024 and not any(tail)

    def files(self) -> list[str]:
        """All regular files, relative POSIX paths, sorted."""
        if self._files is None:
            if self.is_archive:
                self.load()
                self._files = sorted(self._members)
            else:
                found = []
                for dirpath, dirnames, filenames in os.walk(self.path):
                    dirnames[:] = sorted(d for d in dirnames if not _skipped(d))
                    rel = Path(dirpath).relative_to(self.path).as_posix()
                    prefix = "" if rel == "." else rel + "/"
                    found.extend(prefix + f for f in filenames if not _skipped(f))
                self._files = sorted(found)
        return self._files

    def read(self, rel: str) -> bytes:
        if self.is_archive:
            self.load()
            return self._members[rel]
        try:
            return (self.path / rel).read_bytes()
        except OSError as exc:
            raise HarnessError(f"{self.path / rel}: cannot read ({one_line(exc)})") from None

    def where(self, rel: str) -> str:
        """How to name a member in a message: path/inside for directories, archive:member for archives."""
        return f"{self.path}:{rel}" if self.is_archive else str(self.path / rel)


_MAGIC = ((b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))
_GZIP_RESERVED_FLAGS = 0xE0


def _compression(raw) -> str:
    """The archive's compression ("gz", "bz2", "xz", or "tar" for none), from its first bytes, as tar -x does."""
    head = raw.read(6)
    raw.seek(0)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            if kind == "bz2" and not head[3:4].isdigit():  # 'BZh' + block size '1'..'9'; else a tar's name
                continue
            if kind == "gz" and len(head) > 3 and head[3] & _GZIP_RESERVED_FLAGS:
                # RFC 1952: a decompressor must refuse reserved flag bits (gzip -t does; Python's gzip does not).
                raise ValueError("gzip header has reserved flag bits set")
            return kind
    return "tar"


def _decompressed(raw, compression: str):
    """A file object of the decompressed stream that checks its integrity (CRC, length) once read to the end."""
    if compression == "gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == "bz2":
        return bz2.BZ2File(raw, mode="rb")
    if compression == "xz":
        return lzma.LZMAFile(raw, mode="rb")
    return raw


def _norm(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))
