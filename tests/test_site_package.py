"""The leaderboard site is its own package: rendering it loads no torch, and an installed (not editable) harness
ships its templates and static files and renders the site."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from record_factory import make_record, write_json

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision")


def _results(root: Path) -> Path:
    write_json(root / "smoke" / "a.json", make_record("digits-finetune-msp", accuracy=95.0, auroc=91.0))
    write_json(root / "paper" / "b.json", make_record("cifar10-finetune-energy", profile="paper", dataset="cifar10"))
    return root


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=300)
    assert out.returncode == 0, out.stderr
    return out


def test_building_a_site_imports_no_torch(tmp_path):
    """A fresh interpreter builds a site with the committed band files (as the suite reads them) and then lists
    which heavy modules got loaded: none may be, the site is static HTML from JSON records."""
    script = ("import sys\n"
              "from harness.site.leaderboard import build_site\n"
              "build_site(sys.argv[1], sys.argv[2])\n"
              f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    out = _run(["-c", script, str(_results(tmp_path / "results")), str(tmp_path / "site")], ROOT,
               HARNESS_BANDS_DIR=str(ROOT / "benchmarks" / "bands"))
    assert out.stdout.strip() == "[]"
    assert (tmp_path / "site" / "papers").is_dir()  # the band files were read: the paper pages are there


@pytest.mark.slow
def test_a_non_editable_install_builds_the_site(tmp_path):
    """`pip install .` (offline: no index, no build isolation, no dependencies) into a folder, then
    `python -m harness leaderboard` from another folder with only that copy on the path: the templates and static
    files must have been installed as package data. The source is copied first so the build writes nothing into
    the checkout."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "harness", source / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    installed = tmp_path / "installed"
    _run(["-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-build-isolation",
          "--target", str(installed), str(source)], tmp_path)
    assert not (installed / "harness" / "site" / "__init__.py").is_symlink()

    work = tmp_path / "work"
    _results(work / "results")
    env = {"PYTHONPATH": str(installed), "HARNESS_BANDS_DIR": ""}
    where = _run(["-c", "import harness.site; print(harness.site.__file__)"], work, **env)
    assert Path(where.stdout.strip()).is_relative_to(installed)  # the installed copy, not the checkout
    out = _run(["-m", "harness", "leaderboard", "--results", "results", "--out", "site"], work, **env)
    assert out.stdout.strip() == str(Path("site") / "index.html")
    for name in ("index.html", "static/style.css", "static/sort.js"):
        assert (work / "site" / name).is_file(), name
    assert "2 cases from 2 records" in out.stderr
