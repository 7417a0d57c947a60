"""The documentation holds together: README.md and docs/ link to files that exist (and to headings that exist),
every docs page is reachable from the README, and the README's Quick start runs only commands that CI runs."""
import re
import shlex
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_CODE_SPAN = re.compile(r"(`+).+?\1")


def _unfenced(text):
    """(line number, line) of the lines outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def _prose_lines(text):
    """(line number, line) outside fenced code blocks, inline code spans blanked."""
    for number, line in _unfenced(text):
        yield number, _CODE_SPAN.sub("", line)


def _is_external(target):
    return re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) is not None


def links(path):
    """(line, target) of every Markdown link of a file, outside code."""
    return [(n, m.group(1)) for n, line in _prose_lines(path.read_text(encoding="utf-8")) for m in _LINK.finditer(line)]


def slug(heading):
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\*|_(?=\w)|(?<=\w)_", lambda m: "_" if m.group(0) == "_" else "", heading.strip())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path):
    found, seen = set(), {}
    for _, line in _unfenced(path.read_text(encoding="utf-8")):
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            found.add(base if n == 0 else f"{base}-{n}")
            seen[base] = n + 1
    return found


def broken_links(path):
    """'file:line: target: why' for every relative link of `path` that does not resolve."""
    problems = []
    for line, target in links(path):
        if _is_external(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}: {target}"
        if not dest.exists():
            problems.append(f"{where}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{where}: no heading with anchor #{anchor} in {dest.name}")
    return problems


def markdown_files():
    return [README, *sorted(DOCS.rglob("*.md"))]


def test_there_are_docs_pages_and_the_readme_is_a_front_door():
    assert len(list(DOCS.rglob("*.md"))) >= 10
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_the_link_check_catches_a_broken_link_and_anchor(tmp_path):
    (tmp_path / "b.md").write_text("# Some heading: `code` here\n", encoding="utf-8")
    page = tmp_path / "a.md"
    page.write_text("[ok](b.md#some-heading-code-here) [gone](c.md) [bad anchor](b.md#nope)\n"
                    "`[in code](d.md)`\n```\n[fenced](e.md)\n```\n[web](https://example.org/x.md)\n", encoding="utf-8")
    assert [p.split(": ", 1)[1] for p in broken_links(page)] == [
        "c.md: no such file", "b.md#nope: no heading with anchor #nope in b.md"]


def test_every_docs_page_is_reachable_from_the_readme():
    reached, todo = {README.resolve()}, [README.resolve()]
    while todo:
        page = todo.pop()
        for _, target in links(page):
            file_part = target.partition("#")[0]
            if _is_external(target) or not file_part.endswith(".md"):
                continue
            dest = (page.parent / file_part).resolve()
            if dest.exists() and dest not in reached:
                reached.add(dest)
                todo.append(dest)
    unreached = [str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md") if p.resolve() not in reached]
    assert unreached == []


def test_no_page_points_outside_the_repository():
    """Users of the repository have no ../shared folder: every fact they need is in docs/."""
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in markdown_files()
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if "shared/" in line]
    assert offenders == []


# --- the Quick start runs what CI runs ------------------------------------------------------------------------------

# Options that change neither what is installed nor what is run: CI passes them to keep its log short, its
# working tree clean and its records apart. Anything else on a command must be the same in both places.
_NEUTRAL_FLAGS = {"-q", "--quiet"}
_NEUTRAL_WITH_VALUE = {"--results-dir"}
_NEUTRAL_PAIRS = {("-p", "no:cacheprovider")}


def normalise(command):
    """A shell command as a tuple of words, with the interpreter's name and CI-only neutral options dropped."""
    words = shlex.split(command, comments=True)
    if words and words[0] == "python3":
        words[0] = "python"
    out, i = [], 0
    while i < len(words):
        if words[i] in _NEUTRAL_FLAGS:
            i += 1
        elif words[i] in _NEUTRAL_WITH_VALUE or tuple(words[i:i + 2]) in _NEUTRAL_PAIRS:
            i += 2
        elif any(words[i].startswith(flag + "=") for flag in _NEUTRAL_WITH_VALUE):
            i += 1
        else:
            out.append(words[i])
            i += 1
    return tuple(out)


def shell_commands(script):
    """Every simple command of a shell text: continuations joined, comments and here-document bodies dropped,
    split on `&&`, `||` and `;`."""
    lines, heredoc_end = [], None
    for line in script.replace("\\\n", " ").splitlines():
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        m = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if m:
            heredoc_end = m.group(1)
            line = line[:m.start()]
        lines.append(line)
    commands = []
    for line in lines:
        for part in re.split(r"&&|\|\||;", line):
            try:
                words = normalise(part)
            except ValueError:      # a fragment shlex cannot read (e.g. inside `$( ... )`): not a command we compare
                continue
            if words:
                commands.append(words)
    return commands


def quick_start_blocks(readme_text):
    """The fenced blocks between '## Quick start' and the next heading of level 1 or 2."""
    blocks, block, inside, fenced = [], None, False, False
    for line in readme_text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            if inside:
                if fenced:
                    block = []
                else:
                    blocks.append("\n".join(block))
            continue
        if fenced:
            if inside:
                block.append(line)
        elif re.match(r"^#{1,2} ", line):
            inside = line.strip() == "## Quick start"
    return blocks


def test_normalise_keeps_what_matters():
    assert normalise("pytest benchmarks -q -p no:cacheprovider --results-dir \"$w/r\"") == ("pytest", "benchmarks")
    assert normalise("python3 -m venv .venv") == ("python", "-m", "venv", ".venv")
    assert normalise("pip install -q -e '.[dev]'") == ("pip", "install", "-e", ".[dev]")
    assert normalise("pytest benchmarks --profile mini") != normalise("pytest benchmarks")


def test_every_quick_start_command_is_one_that_ci_runs():
    blocks = quick_start_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "README.md has no fenced block under '## Quick start'"
    readme_commands = [c for block in blocks for c in shell_commands(block)]
    assert blocks and readme_commands, "the Quick start has no fenced commands"
    ci = set(shell_commands((ROOT / ".ci" / "run").read_text(encoding="utf-8")))
    missing = [" ".join(c) for c in readme_commands if c not in ci]
    assert missing == [], f"Quick start commands that .ci/run does not run (normalised): {missing}"


def test_the_ci_comparison_fails_when_one_side_changes():
    ci = set(shell_commands("python3 -m venv .venv\npip install -q -e '.[dev]'\npytest tests -q -p no:cacheprovider\n"
                            "python - <<'PY'\nprint('pytest benchmarks')\nPY\n"))
    assert normalise("pytest tests") in ci
    assert normalise("pytest tests -m slow") not in ci
    assert normalise("pytest benchmarks") not in ci          # only inside a here-document
    assert normalise("pip install -e .") not in ci
