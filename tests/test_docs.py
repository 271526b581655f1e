"""The README and docs/ say only what the tree does: every command, path and link is checked.

Fenced blocks say what they hold (``sh``, ``text``, ``python``). Each line of an ``sh`` block is a
command, checked without running it: ``make`` targets and variables exist in the Makefile;
``python -m grader ...`` parses with the grader's own argparse parser (``python -m grader.hub``
with the hub's; any other ``python -m`` module by its ``--help``); ``nbgrader`` subcommands exist
and take the flags given. ``sudo``, ``VAR=value`` and ``grader/hub/course-command`` in front are
checked and stripped. Anything else must end with the comment ``# run by hand``: those lines are
the only ones accepted unchecked. Every repository path named in backticks or in a command exists
(``<placeholder>`` parts match anything; paths git ignores, which runs create, are accepted).
Every relative link resolves, anchors included; ``python`` blocks parse.
"""
import ast
import contextlib
import functools
import importlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from grader import cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = {"sh", "text", "python"}
BY_HAND = "# run by hand"
FENCE = re.compile(r"^\s*```(\S*)\s*$")
BACKTICKED = re.compile(r"`([^`\s]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def fenced_blocks(path):
    """[(language, [lines])] of the fenced blocks in ``path``, in order."""
    blocks, current = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = FENCE.match(line)
        if match and current is None:
            current = (match.group(1), [])
        elif match and not match.group(1):
            blocks.append(current)
            current = None
        elif current is not None:
            current[1].append(line)
    assert current is None, f"{path.name}: a fenced block is not closed"
    return blocks


def prose(path):
    """The text of ``path`` outside fenced blocks."""
    kept, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            inside = not inside
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def commands():
    """(doc name, command line) for every line of every ``sh`` block."""
    return [(path.name, line.strip()) for path in DOCS for language, lines in fenced_blocks(path)
            if language == "sh" for line in lines if line.strip()]


# --- what the tree has ---

def make_targets():
    text = (ROOT / "Makefile").read_text()
    return {name for line in text.splitlines() if (match := re.match(r"^([A-Za-z][\w.-]*)\s*:(?!=)", line))
            for name in [match.group(1)]}


def make_variables():
    """Variables the Makefile sets or reads (``$(BENCH_ARGS)``)."""
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Z_]+)\s*[?:]?=", text, re.MULTILINE)) | set(re.findall(r"\$\(([A-Z_]+)\)", text))


def generated_prefixes():
    """Paths git ignores (runs create them): a doc may name them though a clean clone lacks them."""
    lines = (ROOT / ".gitignore").read_text().splitlines()
    return [line.rstrip("*") for line in lines if line and not line.startswith("#") and "/" in line.rstrip("/")]


def is_repository_path(text):
    """A path inside the repository: its first folder is one of the repository's own."""
    return "/" in text and text.split("/", 1)[0] in {p.name for p in ROOT.iterdir()}


def path_exists(text):
    if any((text + "/").startswith(prefix) for prefix in generated_prefixes()):
        return True
    pattern = re.sub(r"<[^>]+>", "*", text.rstrip("/"))
    return any(ROOT.glob(pattern)) if "*" in pattern else (ROOT / pattern).exists()


# --- checking one command ---

def _parses(parser, args):
    """None when ``parser`` accepts ``args``, else argparse's complaint."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(args)
    except SystemExit as stop:
        return None if stop.code == 0 else errors.getvalue().strip() or f"exit {stop.code}"
    return None


def hub_parser():
    return importlib.import_module("grader.hub.__main__").parser()


@functools.cache
def _module_help(module):
    run = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, f"python -m {module} --help failed:\n{run.stderr[-2000:]}"
    return run.stdout


def check_python(args):
    if args[:1] != ["-m"] or len(args) < 2:
        return "only `python -m <module>` is checked"
    module, rest = args[1], args[2:]
    if module == "grader":
        return _parses(cli.parser(), rest)
    if module == "grader.hub":
        return _parses(hub_parser(), rest)
    text = _module_help(module)
    unknown = [a.split("=")[0] for a in rest if a.startswith("--") and a.split("=")[0] not in text]
    return f"python -m {module} has no {unknown}" if unknown else None


def check_make(args):
    for arg in args:
        if ASSIGNMENT.match(arg):
            name, value = arg.split("=", 1)
            if name not in make_variables():
                return f"the Makefile has no variable {name}"
            if name == "HUB_ARGS":
                problem = _parses(hub_parser(), ["up", *shlex.split(value)])
                if problem:
                    return problem
        elif arg not in make_targets():
            return f"the Makefile has no target {arg}"
    return None


def _nbgrader_app(args):
    """(nbgrader's app class for the subcommand chain at the start of ``args``, the rest)."""
    from nbgrader.apps.nbgraderapp import NbGraderApp
    from traitlets.utils.importstring import import_item
    app = NbGraderApp
    while args and isinstance(app.subcommands, dict) and args[0] in app.subcommands:
        app = app.subcommands[args[0]][0]
        app = import_item(app) if isinstance(app, str) else app
        args = args[1:]
    return app, args


def check_nbgrader(args):
    from nbgrader.apps.nbgraderapp import NbGraderApp
    app, rest = _nbgrader_app(args)
    if app is NbGraderApp:
        return f"nbgrader has no subcommand {args[:1]}"
    for arg in rest:
        name = arg[2:].split("=", 1)[0] if arg.startswith("--") else None
        if name and "." not in name and name not in app.aliases and name not in app.flags:
            return f"nbgrader {args[0]} has no --{name}"
    return None


def check_command(line):
    """None when ``line`` is checked and right (or marked as run by hand), else what is wrong."""
    if BY_HAND in line:
        return None
    words = shlex.split(line, comments=True)
    while words and (words[0] == "sudo" or ASSIGNMENT.match(words[0])):
        words = words[1:]
    if words[:1] == ["grader/hub/course-command"]:
        words = words[1:]
    missing = [w for w in words if is_repository_path(w) and not path_exists(w)]
    if missing:
        return f"no such path: {missing}"
    checks = {"make": check_make, "python": check_python, "nbgrader": check_nbgrader}
    if not words or words[0] not in checks:
        return f"cannot check `{line}`: end it with `{BY_HAND}` if it is run by hand"
    return checks[words[0]](words[1:])


# --- the tests ---

@pytest.mark.parametrize("doc, line", commands())
def test_each_command_exists_or_is_run_by_hand(doc, line):
    assert check_command(line) is None, f"{doc}: {line}: {check_command(line)}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_fenced_blocks_say_what_they_hold_and_python_parses(path):
    for language, lines in fenced_blocks(path):
        assert language in LANGUAGES, f"{path.name}: a fenced block is {language or 'untagged'}"
        if language == "python":
            ast.parse("\n".join(lines))


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_repository_path_named_exists(path):
    named = {m for m in BACKTICKED.findall(prose(path)) if is_repository_path(m)}
    assert [p for p in sorted(named) if not path_exists(p)] == []


def _anchors(path):
    """GitHub's anchor for each heading of ``path``."""
    headings = re.findall(r"^#+\s+(.+)$", prose(path), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_links_between_docs_resolve(path):
    for target in LINK.findall(prose(path)):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{path.name}: link to missing {target}"
        if anchor:
            assert anchor in _anchors(linked), f"{path.name}: {target}: no such heading"


def test_the_readme_is_short_and_links_every_page():
    assert README.stat().st_size < 10 * 1024
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in LINK.findall(prose(README))}
    assert set(DOCS[1:]) <= linked, "a page in docs/ that the README does not link"


def test_the_checks_refuse_what_is_wrong():
    """Each check fails on a wrong command: none of them passes everything."""
    assert check_command("make no-such-target")
    assert check_command("make lab NO_SUCH_VARIABLE=1")
    assert check_command("python -m grader grade a1_backprop --no-such-flag")
    assert check_command("python -m grader no-such-command")
    assert check_command('sudo make hub HUB_ARGS="--no-such-flag"')
    assert check_command("nbgrader no_such_command")
    assert check_command("nbgrader export --no-such-flag")
    assert check_command("nbgrader validate notebooks/no_such/notebook.ipynb")
    assert check_command("rm -rf /")
    assert check_command("rm -rf /  # run by hand") is None
    assert not path_exists("grader/steps/no_such_step.py") and path_exists("grader/reports/<assignment>/grades.csv")
    assert path_exists("solutions/<assignment>/<name>.ipynb") and not path_exists("solutions/<assignment>/x.py")
    named = {m for path in DOCS for m in BACKTICKED.findall(prose(path)) if is_repository_path(m)}
    assert {"grader/steps/inert.py", "grader/lab/README.md", "tests/test_sandbox.py"} <= named
    assert check_command("python -m grader grade a1_backprop --jobs 2") is None
