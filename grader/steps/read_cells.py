"""The answer cells as IPython runs them, read (never run) within bounds.

A cell is read as Python where it is Python, else after IPython's own input transformation
(magics become calls); the code that ``%time`` and ``%timeit`` run is read as trees of its own.
Reading is bounded per cell (size, transformations, CPU seconds): a cell the reader cannot read
raises ``Unreadable`` with the reason, which the scan reports as a finding.
"""
import ast
import re
import signal
import threading
from contextlib import contextmanager

from IPython.core import inputtransformer2

PROMPT = re.compile(r"^\s*(In \[\d+\]:|\.{3,}:|>>>)", re.MULTILINE)  # IPython strips these
TIMED_MAGICS = {"time", "timeit"}  # they run the code they are given: it is read with the cell
TIMEIT_OPTIONS = re.compile(r"^(\s*-(?:[nrp]\s*\d+|[tcqo])(?=\s|$))*\s*")
LINE_MAGIC, CELL_MAGIC = "get_ipython().run_line_magic", "get_ipython().run_cell_magic"


class Unreadable(Exception):
    """A cell (or the code a magic runs) the scan cannot read; ``args[0]``: why, for a person."""

    def __init__(self, what, line=1):
        super().__init__(what)
        self.what, self.line = what, line


class _TooSlow(Exception):
    pass


class _Transformer(inputtransformer2.TransformerManager):
    """IPython's own transformation, stopped after ``limit`` token transforms (each re-reads
    the whole cell: hundreds of magics cost minutes)."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit

    def do_token_transforms(self, lines):
        for _ in range(self.limit):
            changed, lines = self.do_one_token_transform(lines)
            if not changed:
                return lines
        raise Unreadable(f"too many IPython magics to read (more than {self.limit})")


@contextmanager
def _cpu_limit(seconds):
    """Raise _TooSlow in this (main) thread after ``seconds`` of CPU; elsewhere no limit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise _TooSlow()
    previous = signal.signal(signal.SIGVTALRM, stop)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


def dotted(node):
    """'get_ipython().run_line_magic' for an attribute chain of names and calls, else ''."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    if isinstance(node, ast.Call):
        inner = dotted(node.func)
        return ".".join([inner + "()", *reversed(parts)]) if inner else ""
    return ""


def string(node):
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def magic(call):
    """(magic name, its line, its cell body or None) of an IPython magic call, else None."""
    if not isinstance(call, ast.Call) or dotted(call.func) not in (LINE_MAGIC, CELL_MAGIC):
        return None
    args = [string(a) for a in call.args]
    if len(args) < 2 or None in args:
        return None
    return args[0], args[1], args[2] if len(args) > 2 else None


def _python(source, limits):
    """The cell's tree as IPython runs it. A cell that is already Python is read as it is:
    IPython's transformations only rewrite magics, ``!`` and ``?`` (which plain Python rejects)
    and prompts (``In [1]: g = torch.autograd`` is Python of another
    meaning: such cells go through IPython too). Each transformation re-reads the whole cell."""
    if not PROMPT.search(source):
        try:
            return ast.parse(source)
        except SyntaxError:
            pass
    return ast.parse(_Transformer(limits.max_transforms).transform_cell(source))


def _parse(source, limits, depth=0):
    """The trees of a cell: the cell as IPython runs it, then the code its timing magics run."""
    try:
        tree = _python(source, limits)
    except SyntaxError as error:
        raise Unreadable(f"cannot be read as Python ({error.msg})", error.lineno or 1) from None
    except (RecursionError, MemoryError):
        raise Unreadable("nested too deeply to read") from None
    except (ValueError, RuntimeError) as error:
        raise Unreadable(f"cannot be read by IPython ({type(error).__name__}: {str(error)[:80]})") from None
    trees = [tree]
    for node in ast.walk(tree):
        called = magic(node)
        if called and called[0] in TIMED_MAGICS:
            name, line, body = called
            codes = [(TIMEIT_OPTIONS.sub("", line) if name == "timeit" else line, 0)]
            if body is not None:
                codes.append((body, node.lineno))
            for code, offset in codes:
                if depth >= 2:
                    raise Unreadable(f"%{name} inside %{name} too deep to read", node.lineno)
                try:
                    inner = _parse(code, limits, depth + 1)
                except Unreadable as error:
                    raise Unreadable(f"the code given to %{name} {error.what}", node.lineno) from None
                for sub in inner:
                    for child in ast.walk(sub):
                        if hasattr(child, "lineno"):
                            child.lineno = child.lineno + offset if offset else node.lineno
                trees += inner
    return trees


def read_cell(source, limits):
    """The cell's trees (see ``_parse``), or raise Unreadable: too large, too slow, unreadable.

    limits: ``max_cell_chars``, ``max_transforms``, ``cell_cpu_seconds`` (``scan.ScanLimits``)."""
    if len(source) > limits.max_cell_chars:
        raise Unreadable(f"too large to read ({len(source):,} characters; the scan reads at most "
                         f"{limits.max_cell_chars:,})")
    try:
        with _cpu_limit(limits.cell_cpu_seconds):
            return _parse(source, limits)
    except _TooSlow:
        raise Unreadable(f"too slow to read (more than {limits.cell_cpu_seconds:g} s)") from None
