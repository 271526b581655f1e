"""Scan: the answer cells read (never run) for constructs an honest solution never needs.

Numbers cannot prove that a formula was implemented: a ``backward`` can ask torch's autograd,
and code in the student's kernel can reach the grader's checks. This step is the second kind of
evidence. It parses each answer cell (after IPython's own input transformations, so magics are
seen as the calls they become) and reports every use of:

- autograd inside ``backward`` (``torch.autograd``, ``torch.func``/``functorch``, ``grad``,
  ``vjp``, ``jacobian`` ...) and ``enable_grad``/``set_grad_enabled`` anywhere (without it a
  graph cannot be rebuilt inside ``backward``; calling a layer's own ``backward`` is fine);
- introspection and escape hatches: ``gc``, ``inspect``, ``ctypes``, frames and tracebacks,
  ``sys`` hooks, ``__globals__``/``__builtins__``/``__subclasses__``/``__code__`` and the like,
  ``exec``/``eval``/``compile``/``__import__``, ``getattr``/``setattr``/``delattr`` with a
  computed name, ``globals()``/``locals()``/``vars()``;
- files, descriptors, processes and the network (``open``, ``os``, ``io``, ``pathlib``,
  ``subprocess``, ``socket`` ...);
- IPython's machinery: ``get_ipython`` (other than ``%matplotlib``), event hooks, input and AST
  transformers, custom exception handlers, magics;
- changing a library: assigning to an attribute of ``torch``, ``numpy``, ``math``,
  ``backprop_checks`` and other modules.

A finding does not change a score: it sends the submission to a person, with the line quoted.
"""
import ast
from dataclasses import dataclass

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

AUTOGRAD_CALLS = {"grad", "vjp", "jvp", "jacobian", "hessian", "vmap", "jacrev", "jacfwd",
                  "functional_call", "hvp", "vhp"}
AUTOGRAD_MODULES = {"torch.autograd", "torch.func", "functorch", "torch.autograd.functional"}
GRAD_MODE = {"enable_grad", "set_grad_enabled", "_set_grad_enabled", "inference_mode"}
MODULES = {"gc", "inspect", "ctypes", "cffi", "os", "sys", "io", "pathlib", "shutil", "glob",
           "subprocess", "socket", "builtins", "importlib", "pickle", "marshal", "types",
           "traceback", "threading", "multiprocessing", "signal", "resource", "mmap", "tempfile",
           "fcntl", "pty", "atexit", "code", "codeop", "runpy", "sqlite3", "base64", "zlib",
           "urllib", "http", "requests", "IPython", "ipykernel", "jupyter_client", "zmq",
           "tracemalloc", "faulthandler", "dis", "weakref", "site", "functorch", "nbformat",
           "nbgrader", "asyncio", "select", "pwd", "grp", "platform"}
CALLS = {"open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars",
         "breakpoint", "get_ipython", "__builtins__", "__loader__", "__spec__"}
NAME_ARG_CALLS = {"getattr", "setattr", "delattr", "hasattr"}
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
LIBRARIES = {"torch", "np", "numpy", "math", "backprop_checks", "graph_drawer", "F", "nn",
             "plt", "matplotlib", "random", "builtins", "sys", "os"}
ALLOWED_MAGICS = {("matplotlib", "inline")}


@dataclass(frozen=True)
class Finding:
    """One construct in one answer cell that a person should look at."""
    grade_id: str
    line: int
    code: str
    what: str

    def describe(self):
        return f"{self.grade_id} line {self.line}: {self.what}: {self.code.strip()[:120]}"


def _dotted(node):
    """'torch.autograd.grad' for an attribute chain of names, else ''."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    if isinstance(node, ast.Call):  # get_ipython().events ...
        inner = _dotted(node.func)
        return ".".join([inner + "()", *reversed(parts)]) if inner else ""
    return ""


def _is_allowed_magic(call):
    if _dotted(call.func) != "get_ipython().run_line_magic" or len(call.args) != 2:
        return False
    values = tuple(a.value if isinstance(a, ast.Constant) else None for a in call.args)
    return values in ALLOWED_MAGICS


class _Scanner(ast.NodeVisitor):
    def __init__(self):
        self.found = []  # (line, what)
        self.in_backward = 0

    def _hit(self, node, what):
        self.found.append((node.lineno, what))

    def visit_FunctionDef(self, node):
        backward = node.name == "backward"
        self.in_backward += backward
        self.generic_visit(node)
        self.in_backward -= backward

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node):
        for alias in node.names:
            self._module(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        self._module(node, node.module or "")
        if node.module and any(node.module == m or node.module.startswith(m + ".") for m in AUTOGRAD_MODULES):
            self._hit(node, f"imports from {node.module}")
        self.generic_visit(node)

    def _module(self, node, name):
        if name.split(".")[0] in MODULES:
            self._hit(node, f"imports {name}")

    def visit_Call(self, node):
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        if _is_allowed_magic(node):
            for arg in node.args:
                self.visit(arg)
            return
        if name in NAME_ARG_CALLS and (len(node.args) < 2 or not isinstance(node.args[1], ast.Constant)):
            self._hit(node, f"{name} with a computed name")
        if name in ("setattr", "delattr") and node.args and _dotted(node.args[0]).split(".")[0] in LIBRARIES:
            self._hit(node, f"{name} on a library")
        if last in GRAD_MODE:
            self._hit(node, f"switches autograd on ({name})")
        if self.in_backward and (last in AUTOGRAD_CALLS or any(name.startswith(m) for m in AUTOGRAD_MODULES)):
            self._hit(node, f"asks autograd inside backward ({name or last})")
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if node.attr in DUNDERS:
            self._hit(node, f"uses {node.attr}")
        elif node.attr in FRAME_ATTRIBUTES:
            self._hit(node, f"uses {_dotted(node) or node.attr}")
        elif node.attr in GRAD_MODE:
            self._hit(node, f"switches autograd on ({_dotted(node) or node.attr})")
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in CALLS:
            self._hit(node, f"uses {node.id}")

    def _assigned(self, targets):
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Attribute) and _dotted(node).split(".")[0] in LIBRARIES:
                    self._hit(node, f"changes a library ({_dotted(node)})")

    def visit_Assign(self, node):
        self._assigned(node.targets)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._assigned([node.target])
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self._assigned([node.target])
        self.generic_visit(node)

    def visit_Delete(self, node):
        self._assigned(node.targets)
        self.generic_visit(node)



def scan_source(grade_id, source):
    """The findings in one answer cell's source."""
    try:
        python = TransformerManager().transform_cell(source)
        tree = ast.parse(python)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []  # the notebook shows the error; there is nothing here to run
    scanner = _Scanner()
    try:
        scanner.visit(tree)
    except RecursionError:
        return [Finding(grade_id, 1, source.splitlines()[0] if source else "", "nested too deeply to read")]
    lines = python.splitlines()
    unique = sorted(set(scanner.found))
    return [Finding(grade_id, line, lines[line - 1] if 0 < line <= len(lines) else "", what)
            for line, what in unique]


def scan_notebook(path):
    """The findings in every answer cell of the notebook at ``path``."""
    nb = nbformat.read(path, as_version=4)
    findings = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            findings += scan_source(meta.get("grade_id", "?"), cell.source)
    return findings
