"""Nothing a user types destroys data: the name rule over `data import` and `data corrupt --name`, --replace, and
the removal of killed writers' temporaries. Every test hashes the whole sandbox (data root, its parent, the
working directory) before and after, so a command that moved, deleted or wrote anything outside its own
dataset folder fails."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from test_data_cli import expect_error, run

from harness import names
from harness.data import cache

HOSTILE = ["", ".", "..", "../evil", "../../escaped", "a/b", "/tmp/x", "checkpoints", "other", ".tmp+other+x",
           ".other.lock", "CIFAR10", "a..b", "x" * 101, "-a", "a b", "a\nb", "cifar10\0", "~", "dtd"]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """outer/root: a data root with dataset `other` and a checkpoint; outer/work: the working directory;
    outer/src: a folder of one image to import."""
    root, src = tmp_path / "outer" / "root", tmp_path / "outer" / "src"
    src.mkdir(parents=True)
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(src / "a.png")
    assert run_quiet("import", "other", src, "--format", "folder", "--data-root", root) == 0
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "model.pt").write_bytes(b"weights")
    (tmp_path / "outer" / "work").mkdir()
    monkeypatch.chdir(tmp_path / "outer" / "work")
    return tmp_path / "outer"


def run_quiet(*argv) -> int:
    """The command's exit status (a name such as '-a' is an unknown option: argparse's usage error, exit 2)."""
    from harness.cli import main

    try:
        return main(["data", *map(str, argv)])
    except SystemExit as exc:
        return exc.code


def tree(folder) -> dict[str, str]:
    """Every file (its sha256) and folder under `folder`, by relative path."""
    out = {}
    for here, dirs, files in os.walk(folder):
        for d in dirs:
            out[os.path.relpath(os.path.join(here, d), folder) + "/"] = "dir"
        for f in files:
            path = os.path.join(here, f)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def outside(before: dict[str, str], after: dict[str, str], name: str, replace: bool = False) -> dict[str, tuple]:
    """What changed, except the command's own target: its lock file, and `name` where it is a new dataset (or
    any dataset, with --replace)."""
    own = ()
    if names.problem(name) is None:
        mine = replace or f"root/{name}/" not in before
        own = (f"root/{name}", f"root/.{name}.lock") if mine else (f"root/.{name}.lock",)
    keys = (before.keys() | after.keys())
    return {k: (before.get(k), after.get(k)) for k in keys
            if before.get(k) != after.get(k) and not k.startswith(own)}


NAMES = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12),
                  st.from_regex(names.PATTERN, fullmatch=True).map(lambda s: s[:16]))
FIXTURES_OK = settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FIXTURES_OK
@given(name=NAMES, replace=st.booleans())
def test_any_import_name_touches_nothing_but_its_own_folder(sandbox, name, replace):
    before = tree(sandbox)
    rc = run_quiet("import", name, sandbox / "src", "--format", "folder", "--data-root", sandbox / "root",
                   *["--replace"] * replace)
    assert outside(before, tree(sandbox), name, replace) == {}
    assert rc in (0, 2) and (rc == 2 or not names.problem(name))
    if rc == 0:
        assert cache.read_metadata(sandbox / "root", name)["splits"]["test"]["count"] == 1
        if f"root/{name}/" not in before:
            shutil.rmtree(sandbox / "root" / name)


@FIXTURES_OK
@given(name=NAMES)
def test_any_corrupt_name_touches_nothing_but_its_own_folder(sandbox, name):
    before = tree(sandbox)
    rc = run_quiet("corrupt", "digits-0-4", "--name", name, "--corruptions", "gaussian_noise", "--severities", "1",
                   "--images", "1", "--data-root", sandbox / "root")
    assert outside(before, tree(sandbox), name) == {}
    assert rc in (0, 2)
    if rc == 0:
        assert names.problem(name) is None and name != "dtd"
        shutil.rmtree(sandbox / "root" / name)


@pytest.mark.parametrize("name, fragment", [
    (".", "dataset name '.': expected a name of lower-case letters"),  # D3: moved the whole data root away
    ("", "dataset name '': expected"),
    ("..", "dataset name '..': expected"),
    ("../evil", "dataset name '../evil': expected"),  # created evil.lock folders inside the root
    ("checkpoints", "dataset name 'checkpoints': 'checkpoints' is reserved"),  # D4: deleted the checkpoint cache
])
def test_import_refuses_path_like_and_reserved_names(sandbox, capsys, name, fragment):
    before = tree(sandbox)
    expect_error(capsys, ["import", name, sandbox / "src", "--format", "folder", "--data-root", sandbox / "root"],
                 fragment)
    assert outside(before, tree(sandbox), name) == {}


@pytest.mark.parametrize("name, fragment", [
    ("checkpoints", "--name 'checkpoints': 'checkpoints' is reserved"),  # D4
    ("other", "dataset 'other' already exists"),  # D4: `--name dtd` silently replaced the imported DTD
    ("cifar10", "--name 'cifar10' is a registered dataset, not a corrupted set"),  # D4
    ("../x", "--name '../x': expected"),
])
def test_corrupt_refuses_reserved_existing_and_registered_names(sandbox, capsys, name, fragment):
    before = tree(sandbox)
    expect_error(capsys, ["corrupt", "digits-0-4", "--name", name, "--corruptions", "fog", "--images", "1",
                          "--data-root", sandbox / "root"], fragment)
    assert outside(before, tree(sandbox), name) == {}


def test_replace_touches_only_its_own_dataset(sandbox, capsys):
    root = sandbox / "root"
    assert run_quiet("import", "mine", sandbox / "src", "--format", "folder", "--data-root", root) == 0
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(sandbox / "src" / "b.png")
    capsys.readouterr()
    before = tree(sandbox)
    expect_error(capsys, ["import", "mine", sandbox / "src", "--format", "folder", "--data-root", root],
                 "dataset 'mine' already exists", "give --replace to overwrite it")
    assert tree(sandbox) == before
    rc, _, err = run(capsys, "import", "mine", sandbox / "src", "--format", "folder", "--replace", "--data-root", root)
    assert rc == 0, err
    changed = outside(before, tree(sandbox), "mine")
    assert changed and all(k.startswith("root/mine/") for k in changed)
    assert cache.read_metadata(root, "mine")["splits"]["test"]["count"] == 2
    # the same source again is nothing to do, --replace or not
    rc, _, err = run(capsys, "import", "mine", sandbox / "src", "--format", "folder", "--data-root", root)
    assert rc == 0 and "already imported from this source" in err


def test_replace_never_writes_over_a_folder_that_is_not_a_dataset(sandbox, capsys):
    (sandbox / "root" / "notes").mkdir()
    (sandbox / "root" / "notes" / "todo.txt").write_text("mine")
    before = tree(sandbox)
    expect_error(capsys, ["import", "notes", sandbox / "src", "--format", "folder", "--replace", "--data-root",
                          sandbox / "root"], "root/notes exists and is not a dataset")
    assert outside(before, tree(sandbox), "notes") == {}
    assert tree(sandbox / "root" / "notes") == {"todo.txt": hashlib.sha256(b"mine").hexdigest()}


def test_dead_writers_temporaries_are_removed_by_the_next_writer(sandbox, capsys):
    """A killed import or corrupt leaves .tmp+NAME+* (and, between its two renames, .old+NAME+*): the next
    writer removes those whose lock is free, puts a parked entry back where it is missing, and leaves a live
    writer's temporaries alone."""
    root = sandbox / "root"
    dead = root / ".tmp+gone+abc123"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "fog.npy").write_bytes(b"half")
    parked = root / ".old+lost+x1"
    shutil.copytree(root / "other", parked / "lost")
    live = root / ".tmp+busy+q9"
    live.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(root)], env={**os.environ, "PYTHONPATH": REPO})
    try:
        wait_for(lambda: (root / ".busy.ready").exists())
        rc, _, err = run(capsys, "import", "mine", sandbox / "src", "--format", "folder", "--data-root", root)
        assert rc == 0, err
    finally:
        holder.kill()
        holder.wait()
    assert not dead.exists() and not parked.exists() and live.exists()
    assert tree(root / "lost") == tree(root / "other")
    assert sorted(p.name for p in root.iterdir() if p.name.startswith((".tmp", ".old"))) == [live.name]


HOLD_LOCK = """
import sys, time
from pathlib import Path
from harness.data import cache
root = Path(sys.argv[1])
with cache._lock(root, "busy"):
    (root / ".busy.ready").touch()
    time.sleep(60)
"""


def wait_for(condition, seconds=30.0):
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_a_killed_corrupt_leaves_nothing_after_the_next_corrupt(sandbox, capsys):
    """The probe: `data corrupt` killed mid-way, then run again."""
    root = sandbox / "root"
    argv = [sys.executable, "-m", "harness", "data", "corrupt", "digits-0-4", "--name", "big", "--corruptions",
            "glass_blur", "--data-root", str(root)]
    worker = subprocess.Popen(argv, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": REPO})
    wait_for(lambda: any(p.name.startswith(".tmp+big+") for p in root.iterdir()))
    worker.kill()
    worker.wait()
    assert any(p.name.startswith(".tmp+big+") for p in root.iterdir())
    rc, _, err = run(capsys, "corrupt", "digits-0-4", "--name", "big", "--corruptions", "fog", "--severities", "1",
                     "--images", "2", "--data-root", root)
    assert rc == 0, err
    assert not [p for p in root.iterdir() if p.name.startswith((".tmp", ".old"))]


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
