"""Scan: the answer cells read (never run) for what an honest solution never needs.

Numbers cannot prove that a formula was implemented: a ``backward`` can ask torch's autograd.
The verification runner's capability checks are the first line; this scan is the second. It
reads each answer cell as IPython will run it (``read_cells``: ``%time`` and ``%timeit`` are
read together with the code they time) and follows names by what they mean (``names``):

- every name is resolved through the notebook's imports and assignments (``import
  torch.autograd as A``, ``from torch import enable_grad as E``, ``g = torch.autograd``,
  ``getattr(torch, "func")``, ``__import__("gc")``), in the release's cells and the answers;
- *derivative code* is every function that ends up as a Function's ``backward`` (or ``vjp``/
  ``jvp``: ``def backward``, ``backward = staticmethod(helper)``, ``Mul.backward = helper``,
  ``setattr``, ``type(..., {"backward": ...})``), a3's ``numerical_gradient``, every method of
  a class that has one, and every function of the answers they call;
- findings: autograd (``torch.autograd.*``, ``torch.func``) inside derivative code; switching
  autograd on anywhere (``enable_grad``, ``set_grad_enabled`` not given ``False``; ``no_grad``
  and ``inference_mode`` switch it off and are fine); torch's internals, operator registry and
  derivative kernels (``torch._C``, ``torch.ops``, ``torch.library``, ``*_backward``);
  string-executing and introspecting modules and calls (``exec``, ``eval``, ``compile``,
  ``timeit``, ``runpy``, ``code``, ``pickle``, ``marshal``, ``types``, ``importlib``, ``gc``,
  ``inspect``, ``ctypes``, ``sys`` ...), files and processes (``open``, ``os`` beyond
  ``os.environ``/``os.path``), dunders and frames, IPython's machinery other than the timing
  and ``%matplotlib`` magics; changing a library (``torch.allclose = ...``; settings such as
  ``plt.rcParams[...]`` and ``os.environ[...]`` are fine) or rebinding a name the notebook's
  tests take from a library (``check_function = ...``);
- a cell that cannot be read (a syntax error, nesting too deep, too large, too many magics, too
  slow) is itself a finding: what the scan cannot read it cannot call clean.

The course's own idioms (``from torch.autograd import Function, gradcheck``, gradcheck as a
self-test, ``plt.rcParams``, ``%time``, ``torch.no_grad``, the book's indexing) are clean.
A finding does not change a score: it sends the submission to a person, with the line quoted.
``scan_submission`` runs the scan in a child process bounded in time and memory.
"""
import ast
import json
import re
import sys
from dataclasses import asdict, dataclass

from . import bounded
from .names import Names, derivative_code
from .read_cells import TIMED_MAGICS, Unreadable, dotted, magic, read_cell, string

LIBRARIES = {"torch", "functorch", "numpy", "math", "backprop_checks", "graph_drawer", "matplotlib",
             "random", "builtins", "__builtins__", "sys", "os", "IPython", "sklearn", "scipy"}
MODULES = {"gc", "inspect", "ctypes", "cffi", "sys", "io", "pathlib", "shutil", "glob", "subprocess",
           "socket", "builtins", "importlib", "pickle", "marshal", "dill", "cloudpickle", "shelve",
           "copyreg", "types", "traceback", "threading", "_thread", "multiprocessing", "signal",
           "resource", "mmap", "tempfile", "fcntl", "pty", "atexit", "code", "codeop", "runpy",
           "timeit", "doctest", "pdb", "bdb", "trace", "profile", "cProfile", "sqlite3", "base64",
           "zlib", "urllib", "http", "requests", "IPython", "ipykernel", "jupyter_client", "zmq",
           "tracemalloc", "faulthandler", "dis", "weakref", "site", "nbformat", "nbgrader",
           "asyncio", "select", "pwd", "grp", "platform", "posix"}
CHAIN_MODULES = {"os", "sys", "gc", "inspect", "ctypes", "subprocess", "socket", "builtins",
                 "importlib", "pickle", "marshal", "runpy", "timeit", "codeop", "shutil", "pathlib",
                 "glob", "dill", "multiprocessing", "threading", "traceback"}
OS_ALLOWED = {"environ", "getenv", "path", "getcwd", "cpu_count", "sep", "linesep", "pathsep", "name"}
CALLS = {"open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "breakpoint",
         "get_ipython", "__builtins__", "__loader__", "__spec__"}
TORCH_CAPABILITIES = {"torch.ops": "torch's operator registry", "torch.library": "torch.library",
                      "torch.func": "torch.func", "functorch": "functorch", "torch.jit": "torch.jit",
                      "torch.hub": "torch.hub", "torch.package": "torch.package",
                      "torch.utils.cpp_extension": "C++ extensions", "torch.fx": "torch.fx",
                      "torch.overrides": "torch.overrides", "torch.compile": "torch.compile",
                      "torch.export": "torch.export", "torch.load": "torch.load (pickle)",
                      "numpy.load": "numpy.load (pickle)", "numpy.ctypeslib": "numpy.ctypeslib"}
AUTOGRAD_CALLS = {"grad", "vjp", "jvp", "jacobian", "hessian", "vmap", "jacrev", "jacfwd",
                  "functional_call", "hvp", "vhp"}
GRAD_ON = {"enable_grad"}
GRAD_SWITCH = {"set_grad_enabled", "_set_grad_enabled"}
NAME_ARG_CALLS = {"getattr", "setattr", "delattr", "hasattr"}
SETTINGS = {"matplotlib.rcParams", "matplotlib.pyplot.rcParams", "os.environ"}
DUNDERS = {"__globals__", "__builtins__", "__subclasses__", "__code__", "__closure__",
           "__dict__", "__class__", "__bases__", "__mro__", "__base__", "__getattribute__",
           "__import__", "__loader__", "__spec__", "__self__", "__func__", "__wrapped__",
           "__reduce__", "__reduce_ex__", "__setattr__", "__delattr__", "__init_subclass__",
           "__set_name__", "__del__", "__traceback__", "__context__", "__cause__", "__frame__"}
FRAME_ATTRIBUTES = {"f_back", "f_globals", "f_locals", "f_builtins", "f_code", "tb_frame",
                    "tb_next", "gi_frame", "cr_frame", "ag_frame", "_getframe", "settrace",
                    "setprofile", "addaudithook", "meta_path", "path_hooks",
                    "set_custom_exc", "showtraceback", "events", "input_transformers_cleanup",
                    "input_transformers_post", "ast_transformers", "register_magic_function",
                    "run_cell", "run_line_magic", "run_cell_magic", "user_ns",
                    "register_post_execute", "display_formatter", "displayhook", "excepthook"}
INLINE_BACKEND = re.compile(r"InlineBackend\.\w+\s*=\s*(['\"])[\w-]+\1")  # %config of the inline figures
MAX_FINDINGS = 20  # per notebook; the rest counted


@dataclass(frozen=True)
class ScanLimits:
    """What reading one student's answers may cost (a cell over a limit is a finding)."""
    max_cell_chars: int = 30_000
    max_transforms: int = 10       # IPython re-reads the whole cell once per magic
    cell_cpu_seconds: float = 10.0
    student: bounded.Bounds = bounded.Bounds(seconds=60.0, memory_bytes=1024 * 2**20)


@dataclass(frozen=True)
class Finding:
    """One construct in one answer cell that a person should look at."""
    grade_id: str
    line: int
    code: str
    what: str

    def describe(self):
        return f"{self.grade_id} line {self.line}: {self.what}: {self.code.strip()[:120]}"


@dataclass(frozen=True)
class ScanResult:
    """Everything the scan found in one submission."""
    findings: tuple = ()


def _judge(meaning, in_derivative):
    """What a person should know about code that uses ``meaning`` (a qualified name)."""
    parts = meaning.split(".")
    root, found = parts[0], []
    if meaning in CALLS or root == "builtins" and parts[-1] in CALLS:
        found.append(f"uses {meaning}")
    elif root in MODULES:
        found.append(f"uses {meaning}")
    elif root == "os" and len(parts) > 1 and parts[1] not in OS_ALLOWED:
        found.append(f"uses {meaning}")
    for module in CHAIN_MODULES.intersection(parts[1:]) if root in LIBRARIES else ():
        found.append(f"reaches {module} through {meaning}")
    if root in ("torch", "functorch", "numpy"):
        if any(p.startswith("_") and not p.endswith("__") for p in parts[1:]):
            found.append(f"uses {root}'s internals ({meaning})")
        for prefix, what in TORCH_CAPABILITIES.items():
            if meaning == prefix or meaning.startswith(prefix + "."):
                found.append(f"uses {what} ({meaning})")
        if any("backward" in p and p != "backward" for p in parts[1:]):
            found.append(f"uses a derivative kernel ({meaning})")
    if parts[-1] in GRAD_ON:
        found.append(f"switches autograd on ({meaning})")
    if in_derivative and (meaning.startswith(("torch.autograd.", "torch.func", "functorch"))
                          and meaning != "torch.autograd.Function"):
        found.append(f"asks autograd inside backward ({meaning})")
    return found


class _Checker(ast.NodeVisitor):
    """Findings in one answer cell's trees, given the notebook's names and derivative code."""

    def __init__(self, names, derivative, release):
        self.names, self.derivative, self.release = names, derivative, release
        self.found = []  # (line, what)

    def _hit(self, node, what):
        self.found.append((getattr(node, "lineno", 1), what))

    def _uses(self, node):
        for meaning in sorted(self.names.resolve(node)):
            for what in _judge(meaning, id(node) in self.derivative):
                self._hit(node, what)

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name.split(".")[0] in MODULES:
                self._hit(node, f"imports {alias.name}")
            self._rebinds(node, alias.asname or alias.name.split(".")[0], {alias.asname and alias.name
                                                                            or alias.name.split(".")[0]})

    def visit_ImportFrom(self, node):
        module = node.module or ""
        if module.split(".")[0] in MODULES or module.split(".")[0] == "os" and any(
                a.name not in OS_ALLOWED for a in node.names):
            self._hit(node, f"imports from {module}")
        for alias in node.names:
            meaning = f"{module}.{alias.name}"
            if alias.name == "*":
                if module.split(".")[0] in ("torch", "functorch"):
                    self._hit(node, f"imports * from {module} (names that cannot be followed)")
                continue
            for what in _judge(meaning, id(node) in self.derivative):
                self._hit(node, what)
            self._rebinds(node, alias.asname or alias.name, {meaning})

    def visit_Call(self, node):
        called = magic(node)
        if called and (called[0] in TIMED_MAGICS or called == ("matplotlib", called[1], None)
                       or called[0] == "config" and INLINE_BACKEND.fullmatch(called[1])):
            return  # allowed; the code a timing magic runs was read as a tree of its own
        if self.names.resolve(node):  # getattr(m, "name"), __import__("m"): what they return
            self._uses(node)
        spelled = dotted(node.func)
        meanings = self.names.resolve(node.func) | ({spelled} if spelled else set())
        lasts = {m.rsplit(".", 1)[-1] for m in meanings}
        if lasts & NAME_ARG_CALLS and (len(node.args) < 2 or string(node.args[1]) is None):
            self._hit(node, f"{spelled or 'getattr'} with a computed name")
        if lasts & {"setattr", "delattr"} and node.args and self._library(node.args[0]):
            self._hit(node, f"{spelled} on a library")
        if lasts & GRAD_SWITCH and not (node.args and isinstance(node.args[0], ast.Constant)
                                        and node.args[0].value is False):
            self._hit(node, f"switches autograd on ({spelled or sorted(meanings)[0]})")
        if id(node) in self.derivative and isinstance(node.func, ast.Name) \
                and node.func.id not in self.names.bound and node.func.id in AUTOGRAD_CALLS:
            self._hit(node, f"asks autograd inside backward ({node.func.id})")
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if node.attr in DUNDERS:
            self._hit(node, f"uses {node.attr}")
        elif node.attr in FRAME_ATTRIBUTES:
            self._hit(node, f"uses {dotted(node) or node.attr}")
        elif node.attr in GRAD_ON and not self.names.resolve(node):
            self._hit(node, f"switches autograd on ({dotted(node) or node.attr})")
        self._uses(node if isinstance(node.ctx, ast.Load) else node.value)
        self._visit_below(node.value)

    def _visit_below(self, node):
        """Visit what an attribute chain is built on, without judging its shorter prefixes."""
        while isinstance(node, ast.Attribute):
            if node.attr in DUNDERS or node.attr in FRAME_ATTRIBUTES:
                self._hit(node, f"uses {node.attr if node.attr in DUNDERS else dotted(node) or node.attr}")
            node = node.value
        if not isinstance(node, ast.Name):
            self.visit(node)

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            self._uses(node)
        elif isinstance(node.ctx, ast.Store):
            self._rebinds(node, node.id, None)

    def visit_FunctionDef(self, node):
        self._rebinds(node, node.name, None)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def _library(self, node):
        return any(m.split(".")[0] in LIBRARIES for m in self.names.resolve(node))

    def _rebinds(self, node, name, meanings):
        """A name the release's cells take from a library, bound here to something else."""
        before = self.release.get(name, set())
        if any(m.split(".")[0] in LIBRARIES for m in before) and meanings != before:
            self._hit(node, f"rebinds {name}, which the notebook takes from {sorted(before)[0]}")

    def _changed(self, target):
        if isinstance(target, ast.Attribute) and self._library(target.value):
            self._hit(target, f"changes a library ({dotted(target) or target.attr})")
        elif isinstance(target, ast.Subscript) and self._library(target.value) \
                and not self.names.resolve(target.value) <= SETTINGS:
            self._hit(target, f"changes a library ({dotted(target.value)}[...])")
        elif isinstance(target, (ast.Tuple, ast.List, ast.Starred)):
            for part in getattr(target, "elts", [getattr(target, "value", None)]):
                self._changed(part)

    def visit_Assign(self, node):
        for target in node.targets:
            self._changed(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._changed(node.target)
        self.generic_visit(node)

    visit_AnnAssign = visit_AugAssign

    def visit_Delete(self, node):
        for target in node.targets:
            self._changed(target)
        self.generic_visit(node)


def _release_names(trees):
    names = Names.of(trees)
    return {name: {m for m in meanings if m} for name, meanings in names.bound.items()}


def scan_cells(cells, limits=ScanLimits()):
    """The findings in a notebook's cells, in order: [(grade id, source)], the grade id None for
    the release's own cells (read only for the names they bind)."""
    findings, read = [], []
    for grade_id, source in cells:
        try:
            read.append((grade_id, source, read_cell(source, limits)))
        except Unreadable as error:
            if grade_id is not None:
                lines = source.splitlines()
                code = lines[error.line - 1] if 0 < error.line <= len(lines) else ""
                findings.append(Finding(grade_id, error.line, code[:200], error.what))
    all_trees = [tree for _, _, trees in read for tree in trees]
    answers = [tree for grade_id, _, trees in read if grade_id is not None for tree in trees]
    names = Names.of(all_trees)
    release = _release_names([tree for grade_id, _, trees in read if grade_id is None for tree in trees])
    derivative = derivative_code(answers)
    for grade_id, source, trees in read:
        if grade_id is None:
            continue
        checker = _Checker(names, derivative, release)
        try:
            for tree in trees:
                checker.visit(tree)
        except RecursionError:
            checker.found.append((1, "nested too deeply to read"))
        lines = source.splitlines()
        findings += [Finding(grade_id, line, lines[line - 1][:200] if 0 < line <= len(lines) else "", what)
                     for line, what in sorted(set(checker.found))]
    if len(findings) > MAX_FINDINGS:
        findings = findings[:MAX_FINDINGS] + [Finding("notebook", 0, "", f"and {len(findings) - MAX_FINDINGS} "
                                                                         "more findings")]
    return findings


def scan_source(grade_id, source, limits=ScanLimits()):
    """The findings in one answer cell's source, read on its own."""
    return scan_cells([(grade_id, source)], limits)


def notebook_cells(path):
    """[(grade id or None, source)] of the code cells of the notebook at ``path``."""
    with open(path, encoding="utf-8") as file:
        nb = json.load(file)
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        cells.append((meta.get("grade_id", "?") if meta.get("solution") else None, source))
    return cells


def scan_notebook(path, limits=ScanLimits()):
    """The findings in every answer cell of the notebook at ``path``, in this process."""
    return scan_cells(notebook_cells(path), limits)


def scan_submissions(paths, limits=ScanLimits()):
    """{path: ScanResult} of ``scan_notebook`` for each notebook, in a child process bounded by
    ``limits.student`` (time per notebook, memory per child): a notebook too expensive to read
    is a finding of its own and costs nothing beyond its bounds; the others are read on."""
    paths = [str(p) for p in paths]
    try:
        found = bounded.run_each(__name__, paths, limits.student, [json.dumps(asdict(limits))])
    except OSError as error:  # no child at all: every notebook unread, each said so
        found = dict.fromkeys(paths, bounded.Exceeded(f"could not start: {error}"))
    return {path: _result(found[path]) for path in paths}


def scan_submission(path, limits=ScanLimits()) -> ScanResult:
    """``scan_submissions`` of one notebook."""
    return scan_submissions([path], limits)[str(path)]


def _result(found):
    try:
        if not isinstance(found, bounded.Exceeded):
            return ScanResult(tuple(Finding(**f) for f in found))
    except TypeError:
        found = bounded.Exceeded("printed no result")
    return ScanResult((Finding("notebook", 0, "", f"too expensive to read: the scan {found}"),))


def _main(listed, start, limits):
    bounded.limit_this_process()
    given = json.loads(limits)
    given["student"] = bounded.Bounds(**given["student"])
    limits = ScanLimits(**given)
    for path in bounded.items_from(listed, start):
        bounded.answer([asdict(f) for f in scan_notebook(path, limits)])


if __name__ == "__main__":
    _main(*sys.argv[1:])
