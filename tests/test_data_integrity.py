"""A compressed archive is checked over its whole stream (CRC, length, trailer) before anything reaches the cache.

tarfile stops reading at the end-of-archive blocks, before the gzip/bz2/xz trailer, so a flipped bit used to import
silently with changed pixels. Every flip that changes what the archive decompresses to, or that the format's own
checks reject, must now be exit 2 with one line naming the archive.
"""
import bz2
import gzip
import lzma
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from test_data_readers import CIFAR10_NAMES, write_imagefolder

from harness.cli import main

DECOMPRESS = {"gz": gzip.decompress, "bz2": bz2.decompress, "xz": lzma.decompress}


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """A small cifar10 ImageFolder packed as .tar.gz, .tar.bz2 and .tar.xz."""
    tmp = tmp_path_factory.mktemp("integrity")
    write_imagefolder(tmp / "src" / "cifar10-jpeg", classes=tuple(CIFAR10_NAMES), per_class=1, ext="jpg")
    out = {}
    for comp in DECOMPRESS:
        out[comp] = tmp / f"cifar10-jpeg.tar.{comp}"
        with tarfile.open(out[comp], f"w:{comp}") as tar:
            tar.add(tmp / "src" / "cifar10-jpeg", arcname="cifar10-jpeg")
    return out


def flip_that_matters(data: bytes, offset: int, decompress) -> bytes | None:
    """`data` with one bit flipped at `offset`, the lowest bit whose flip changes the decompressed bytes or is
    refused by the stdlib decompressor; None if no bit there matters (e.g. gzip's mtime: no check covers it)."""
    original = decompress(data)
    for bit in range(8):
        flipped = bytearray(data)
        flipped[offset] ^= 1 << bit
        try:
            if decompress(bytes(flipped)) == original:
                continue
        except Exception:  # noqa: BLE001 - the stdlib refuses it: a flip that matters
            pass
        return bytes(flipped)
    return None


def expect_archive_error(capsys, path: Path, root: Path) -> str:
    rc = main(["data", "import", "cifar10", str(path), "--data-root", str(root)])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert rc == 2, (path.name, err)
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: truncated or corrupt archive"), err
    assert not (root / "cifar10").exists()  # nothing reached the cache
    return lines[0]


def first_data_byte(data: bytes, comp: str) -> int:
    """Where the compressed data starts: after gzip's header (10 bytes + FNAME), bz2's 'BZh9', xz's 12 bytes."""
    if comp == "gz":
        assert data[3] in (0x00, 0x08)  # no optional fields but FNAME (tarfile writes one, gzip -n does not)
        return data.index(b"\0", 10) + 1 if data[3] else 10
    return {"bz2": 4, "xz": 12}[comp]


def offsets(data: bytes, comp: str) -> dict[str, int]:
    """Positions to damage: the header area, the middle, near the end, and inside the trailer."""
    n, start = len(data), first_data_byte(data, comp)
    where = {"magic": 0, "header flags": 3, "first data byte": start, "early data": start + 7,
             "first third": n // 3, "middle": n // 2, "near the end": n - 40, "last data byte": n - 9}
    if comp == "gz":  # trailer: CRC32 (n-8..n-5), ISIZE (n-4..n-1)
        where |= {"CRC32": n - 8, "CRC32 high byte": n - 5, "ISIZE": n - 4, "ISIZE high byte": n - 1}
    elif comp == "bz2":  # trailer: end-of-stream magic and the combined stream CRC, bit-aligned in the last bytes
        where |= {"stream CRC": n - 4, "end-of-stream magic": n - 8, "last byte": n - 1}
    else:  # xz footer: CRC32, backward size, flags, magic "YZ"; the index just before it
        where |= {"index": n - 20, "footer CRC32": n - 12, "backward size": n - 8, "footer magic": n - 1}
    return where


@pytest.mark.parametrize("comp", list(DECOMPRESS))
def test_archive_imports_intact(tmp_path, capsys, archives, comp):
    rc = main(["data", "import", "cifar10", str(archives[comp]), "--data-root", str(tmp_path)])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "cifar10" / "metadata.json").exists()


@pytest.mark.parametrize("comp", list(DECOMPRESS))
def test_one_flipped_bit_anywhere_is_refused(tmp_path, capsys, archives, comp):
    data = archives[comp].read_bytes()
    tested = []
    for label, offset in offsets(data, comp).items():
        flipped = flip_that_matters(data, offset, DECOMPRESS[comp])
        assert flipped is not None, (comp, label, offset)  # no chosen offset is one that no check covers
        bad = tmp_path / f"flip-{offset}-{archives[comp].name}"
        bad.write_bytes(flipped)
        expect_archive_error(capsys, bad, tmp_path / "cache")
        tested.append(label)
    assert len(tested) >= 10


def test_gzip_reserved_flag_bits_are_refused(tmp_path, capsys, archives):
    """RFC 1952: reserved FLG bits must be refused (gzip -t does); Python's gzip module ignores them."""
    data = bytearray(archives["gz"].read_bytes())
    data[3] ^= 0x20
    bad = tmp_path / "reserved.tar.gz"
    bad.write_bytes(bytes(data))
    assert "reserved flag bits" in expect_archive_error(capsys, bad, tmp_path / "cache")


@pytest.mark.parametrize("comp", list(DECOMPRESS))
@pytest.mark.parametrize("cut", [1, 4, 8, 12])
def test_cut_trailer_is_refused(tmp_path, capsys, archives, comp, cut):
    bad = tmp_path / f"cut{cut}-{archives[comp].name}"
    bad.write_bytes(archives[comp].read_bytes()[:-cut])
    line = expect_archive_error(capsys, bad, tmp_path / "cache")
    assert "ended before the end-of-stream marker" in line


def test_exit_status_2_from_the_command_line(tmp_path, archives):
    data = bytearray(archives["gz"].read_bytes())
    data[len(data) // 2] ^= 0x10
    bad = tmp_path / "flipped.tar.gz"
    bad.write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, "-m", "harness", "data", "import", "cifar10", str(bad),
                           "--data-root", str(tmp_path / "cache")], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "truncated or corrupt archive" in lines[0], proc.stderr
    assert not (tmp_path / "cache" / "cifar10").exists()


SHARED = os.environ.get("HARNESS_SHARED_DATA")


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.skipif(not SHARED, reason="HARNESS_SHARED_DATA is not set (the folder of the shared archives)")
def test_real_cifar10_archive_with_one_flipped_bit(tmp_path, capsys):
    """The defect as reported: the real cifar10-jpeg.tar.gz with one bit flipped imported with exit 0."""
    original = (Path(SHARED) / "cifar10-jpeg.tar.gz").read_bytes()
    n = len(original)
    started = time.perf_counter()
    # early, a third in, the middle (deflate data of JPEG members), near the end, the CRC32 of the trailer
    for offset in (first_data_byte(original, "gz") + 100, n // 3, n // 2, n - 100, n - 8):
        flipped = bytearray(original)
        flipped[offset] ^= 0x04
        bad = tmp_path / "cifar10-jpeg.tar.gz"
        bad.write_bytes(bytes(flipped))
        expect_archive_error(capsys, bad, tmp_path / "cache")
    assert time.perf_counter() - started < 120  # about 8 s each: the error comes at the end of the one pass
