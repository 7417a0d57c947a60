"""Checkpoint files on disk: verified (sha256) and weights-only loading, the common state-dict wrappers, atomic
writes. The cache (harness.checkpoints) and the user's checkpoints (model entries, `--checkpoint`) read and write
through here; nothing here knows about recipes or runs."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from harness.data.sources import one_line
from harness.errors import HarnessError


def not_a_file(path: Path) -> str | None:
    """Why `path` cannot be a checkpoint before it is even read, or None."""
    if path.is_dir():
        return f"checkpoint {path} is a directory; expected a state-dict file"
    if not path.is_file():
        return f"checkpoint file {path} does not exist"
    if path.stat().st_size == 0:
        return f"checkpoint {path} is empty (0 bytes): an interrupted download or save?"
    return None


def load_verified(path: str | os.PathLike, sha256: str):
    """torch.load(weights_only=True) of `path` after checking its sha256; mismatch or damage -> HarnessError."""
    path = Path(path)
    if not_a_file(path):
        raise HarnessError(not_a_file(path))
    expected = sha256.lower().strip()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise HarnessError(f"sha256 for {path} must be 64 hex digits, got {sha256!r}")
    actual = sha256_of(path)
    if actual != expected:
        raise HarnessError(f"checkpoint {path} has sha256 {actual}, expected {expected}: wrong or damaged file")
    return load_weights_only(path)


def load_weights_only(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle with disallowed globals, not a torch file
        raise HarnessError(f"cannot load checkpoint {path}: {exc.__class__.__name__}: {one_line(exc)} "
                           f"(truncated, damaged, or not a weights-only torch file; the harness never unpickles code: "
                           f"save the state dict alone, torch.save(model.state_dict(), PATH), and load that)") from None


def unwrap(obj, path) -> dict:
    """A bare state dict, or the common wrappers {"state_dict": ...} / {"model": ...} / harness checkpoints."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict) and all(isinstance(v, torch.Tensor) for v in obj[key].values()):
                return obj[key]
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise HarnessError(f"{path}: expected a state dict (or a dict holding one under 'state_dict'/'model')")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write(path: Path, blob: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
