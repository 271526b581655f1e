"""The static scan of answer cells: honest solutions pass clean, each class of escape is named."""
import glob

import pytest

from grader.course import REPO_ROOT
import nbformat

from grader.steps.bounded import Bounds
from grader.steps.scan import (Finding, ScanLimits, ScanResult, scan_notebook, scan_source, scan_submission,
                               scan_submissions)
from notebooks import release, write

HONEST = {
    "magic": "%matplotlib inline\nimport torch",
    "helpers": "from backprop_checks import random_inputs\nimport numpy as np\nimport math",
    "setup_context": ("class Mul(torch.autograd.Function):\n    @staticmethod\n    def forward(x, y):\n"
                      "        return x * y\n    @staticmethod\n    def setup_context(ctx, inputs, output):\n"
                      "        ctx.save_for_backward(*inputs)\n    @staticmethod\n"
                      "    def backward(ctx, grad_output):\n        x, y = ctx.saved_tensors\n"
                      "        return grad_output * y, grad_output * x"),
    "layer_backward": ("class TwoLayerNet:\n    def backward(self, dout):\n"
                       "        dout = self.last.backward(dout)\n        for layer in reversed(self.layers):\n"
                       "            dout = layer.backward(dout)\n        return self.affine.grads"),
    "no_grad": "with torch.no_grad():\n    W -= lr * W.grad\nnet.params['W1'] = W",
    "input_name": "def forward(ctx, input):\n    return input.clamp(min=0)",
}

HOSTILE = {
    "autograd_grad": ("def backward(ctx, g):\n    x, = ctx.saved_tensors\n    with torch.enable_grad():\n"
                      "        x = x.detach().requires_grad_()\n        return torch.autograd.grad(x * x, x, g)",
                      {"switches autograd on (torch.enable_grad)", "asks autograd inside backward (torch.autograd.grad)"}),
    "func_vjp": ("from torch.func import vjp\ndef backward(ctx, g):\n    return vjp(torch.sin, g)[1](g)",
                 {"uses torch.func (torch.func.vjp)", "asks autograd inside backward (torch.func.vjp)"}),
    "grad_mode_c": ("torch._C._set_grad_enabled(True)", {"uses torch's internals (torch._C._set_grad_enabled)",
                                                         "switches autograd on (torch._C._set_grad_enabled)"}),
    "frames": ("import sys\nframe = sys._getframe(1).f_back",
               {"imports sys", "uses sys._getframe", "uses sys._getframe().f_back"}),
    "gc_walk": ("import gc\nobjs = gc.get_objects()", {"imports gc", "uses gc.get_objects"}),
    "inspect": ("import inspect as i", {"imports inspect"}),
    "ctypes": ("from ctypes import CDLL", {"imports from ctypes", "uses ctypes.CDLL"}),
    "open": ("data = open('job.json').read()", {"uses open"}),
    "open_alias": ("o = open\no('x')", {"uses open"}),
    "os_fd": ("import os\nos.write(3, b'{}')", {"uses os.write"}),
    "os_alias": ("import os as o\nw = o.write\nw(3, b'{}')", {"uses os.write"}),
    "dunder_import": ("m = __import__('o' + 's')", {"uses __import__"}),
    "exec": ("exec('x = 1')", {"uses exec"}),
    "computed_getattr": ("getattr(torch, 'all' + 'close')", {"getattr with a computed name"}),
    "setattr_library": ("setattr(torch, 'allclose', print)", {"setattr on a library"}),
    "subclasses": ("().__class__.__base__.__subclasses__()",
                   {"uses __class__", "uses __base__", "uses __subclasses__"}),
    "globals_of": ("f.__globals__['check'] = None", {"uses __globals__"}),
    "builtins": ("__builtins__.print = None", {"uses __builtins__", "changes a library (__builtins__.print)"}),
    "events": ("get_ipython().events.register('pre_run_cell', print)",
               {"uses get_ipython", "uses get_ipython().events"}),
    "transformers": ("ip = get_ipython()\nip.input_transformers_post.append(f)",
                     {"uses get_ipython", "uses ip.input_transformers_post"}),
    "other_magic": ("%run other.py", {"uses get_ipython", "uses get_ipython().run_line_magic"}),
    "shell": ("!cat /etc/passwd", {"uses get_ipython"}),
    "patch_library": ("torch.allclose = lambda *a, **k: True", {"changes a library (torch.allclose)"}),
    "patch_checks": ("import backprop_checks\nbackprop_checks.check_function = print",
                     {"changes a library (backprop_checks.check_function)"}),
    "patch_tensor": ("torch.Tensor.__eq__ = lambda *a: True", {"changes a library (torch.Tensor.__eq__)"}),
    "patch_through_alias": ("T = torch.Tensor\nT.__eq__ = lambda *a: True", {"changes a library (T.__eq__)"}),
    "patch_library_table": ("import backprop_checks as b\nb.REFERENCE_NODES['Mul'] = Mul",
                            {"changes a library (b.REFERENCE_NODES[...])"}),
}

BACKWARD = "class Mul(Function):\n    @staticmethod\n    def backward(ctx, g):\n        {}\n"
BORROW = "return {}(ctx.out, ctx.saved_tensors, g)"
ASKS = "asks autograd inside backward (torch.autograd.grad)"

# The same capability under other spellings: each must be named by what it means.
MEANING = {
    "module_alias": ("import torch.autograd as A\n" + BACKWARD.format(BORROW.format("A.grad")), {ASKS}),
    "from_alias": ("from torch.autograd import grad as G\n" + BACKWARD.format(BORROW.format("G")), {ASKS}),
    "assigned_alias": ("g_ = torch.autograd\n" + BACKWARD.format(BORROW.format("g_.grad")), {ASKS}),
    "alias_of_alias": ("a = b\nb = torch.autograd\n" + BACKWARD.format(BORROW.format("a.grad")), {ASKS}),
    "getattr_constant": (BACKWARD.format(BORROW.format("getattr(torch.autograd, 'grad')")), {ASKS}),
    "dunder_import_constant": (BACKWARD.format(BORROW.format("__import__('torch').autograd.grad")),
                               {ASKS, "uses __import__"}),
    "enable_grad_alias": ("from torch import enable_grad as E\nwith E():\n    pass",
                          {"switches autograd on (torch.enable_grad)"}),
    "set_grad_enabled": ("torch.set_grad_enabled(True)", {"switches autograd on (torch.set_grad_enabled)"}),
    "staticmethod_helper": ("def helper(ctx, g):\n    " + BORROW.format("torch.autograd.grad")
                            + "\nclass Mul(Function):\n    backward = staticmethod(helper)", {ASKS}),
    "assigned_after_class": ("def helper(ctx, g):\n    " + BORROW.format("torch.autograd.grad")
                             + "\nclass Mul(Function):\n    pass\nMul.backward = staticmethod(helper)", {ASKS}),
    "setattr_backward": ("def helper(ctx, g):\n    " + BORROW.format("torch.autograd.grad")
                         + "\nsetattr(Mul, 'backward', staticmethod(helper))", {ASKS}),
    "type_dictionary": ("Mul = type('Mul', (Function,), {'backward': staticmethod(lambda ctx, g: "
                        "torch.autograd.grad(ctx.out, ctx.x, g))})", {ASKS}),
    "vjp_slot": ("class Mul(Function):\n    @staticmethod\n    def vjp(ctx, g):\n        "
                 + BORROW.format("torch.autograd.grad"), {ASKS}),
    "reached_helper": ("def helper(out, x, g):\n    " + BORROW.format("torch.autograd.grad")
                       + "\n" + BACKWARD.format("return helper(ctx.out, ctx.x, g)"), {ASKS}),
    "in_forward_of_a_function": ("class Mul(Function):\n    @staticmethod\n    def forward(ctx, x):\n"
                                 "        ctx.g = torch.autograd.grad\n" + BACKWARD.split("\n", 1)[1].format(
                                     "return ctx.g(ctx.out, ctx.x, g)"), {ASKS}),
    "numerical_gradient": ("def numerical_gradient(f, x, h=1e-4):\n    x = x.detach().requires_grad_()\n"
                           "    return torch.autograd.grad(f(x), x)[0]", {ASKS}),
    "func_anywhere": ("from torch import func\ngrads = func.grad(f)(x)",
                      {"uses torch.func (torch.func)", "uses torch.func (torch.func.grad)"}),
    "aten_kernel": ("ops = torch.ops\n" + BACKWARD.format("return ops.aten.threshold_backward(g, ctx.x, 0)"),
                    {"uses torch's operator registry (torch.ops)",
                     "uses torch's operator registry (torch.ops.aten.threshold_backward)",
                     "uses a derivative kernel (torch.ops.aten.threshold_backward)"}),
    "private_kernel": ("torch._C._nn.nll_loss_backward", {"uses torch's internals (torch._C._nn.nll_loss_backward)",
                                                          "uses a derivative kernel (torch._C._nn.nll_loss_backward)"}),
    "timeit_string": ("import timeit\ntimeit.timeit('import gc')", {"imports timeit", "uses timeit.timeit"}),
    "runpy": ("from runpy import run_path as r", {"imports from runpy", "uses runpy.run_path"}),
    "code_module": ("import code\ncode.InteractiveInterpreter().runsource(s)",
                    {"imports code", "uses code.InteractiveInterpreter"}),
    "codeop": ("import codeop", {"imports codeop"}),
    "pickle": ("import pickle as p\np.loads(b)", {"imports pickle", "uses pickle.loads"}),
    "marshal": ("import marshal\nexec(marshal.loads(b))", {"imports marshal", "uses marshal.loads", "uses exec"}),
    "code_type": ("import types\nf = types.FunctionType(types.CodeType(*a), {})",
                  {"imports types", "uses types.FunctionType", "uses types.CodeType"}),
    "importlib": ("import importlib\ng = importlib.import_module('gc')\ng.get_objects()",
                  {"imports importlib", "uses importlib.import_module", "uses gc", "uses gc.get_objects"}),
    "sys_modules": ("import sys\nsys.modules['gc'].get_objects()",
                    {"imports sys", "uses sys.modules", "uses gc.get_objects"}),
    "module_inside_a_library": ("torch.serialization.pickle.loads(b)",
                                {"reaches pickle through torch.serialization.pickle.loads"}),
    "star_import": ("from torch.autograd import *\n" + BACKWARD.format("return grad(ctx.out, ctx.x, g)"),
                    {"imports * from torch.autograd (names that cannot be followed)",
                     "asks autograd inside backward (grad)"}),
    "timed_code_is_read": ("%time import gc", {"imports gc"}),
    "timed_cell_is_read": ("%%timeit -n 1 -r 1\ntorch.set_grad_enabled(True)",
                           {"switches autograd on (torch.set_grad_enabled)"}),
    "dunder_in_a_string": ("from operator import attrgetter\nattrgetter('__globals__')(f)", set()),
}


@pytest.mark.parametrize("name", sorted(MEANING))
def test_each_spelling_is_named_by_its_meaning(name):
    source, expected = MEANING[name]
    assert {f.what for f in scan_source(name, source)} == expected


UNREADABLE = {
    "syntax_error": ("def broken(:\n    import gc", "cannot be read as Python (invalid syntax)"),
    "deep_expression": ("x = " + "-" * 20_000 + "1\nimport gc\ntorch.autograd.grad(y, x)", "nested too deeply to read"),
    "long_chain": ("x = " + "+".join(["1"] * 12_000) + "\nimport gc", "nested too deeply to read"),
    "too_large": ("# " + "x" * 40_000 + "\nimport gc",
                  "too large to read (40,012 characters; the scan reads at most 30,000)"),
    "too_many_magics": ("%time x = 1\n" * 12, "too many IPython magics to read (more than 10)"),
    "unreadable_timed_code": ("%time def (", "the code given to %time cannot be read as Python (invalid syntax)"),
}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_a_cell_the_scan_cannot_read_is_a_finding_never_clean(name):
    source, what = UNREADABLE[name]
    assert what in {f.what for f in scan_source(name, source)}


@pytest.mark.parametrize("path", sorted(glob.glob(str(REPO_ROOT / "solutions" / "*" / "*.ipynb"))))
def test_the_solutions_are_clean(path):
    assert scan_notebook(path) == []


@pytest.mark.parametrize("name", sorted(HONEST))
def test_honest_variants_are_clean(name):
    assert scan_source(name, HONEST[name]) == []


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_each_escape_is_named(name):
    source, expected = HOSTILE[name]
    assert {f.what for f in scan_source(name, source)} == expected


def test_a_finding_quotes_its_line():
    finding, = scan_source("mul", "x = 1\nimport gc")
    assert (finding.line, finding.describe()) == (2, "mul line 2: imports gc: import gc")


def test_reading_a_cell_is_bounded_in_time():
    cell = "x = 1\n" * 2_000
    assert scan_source("mul", cell, ScanLimits(cell_cpu_seconds=1e-6))[0].what == "too slow to read (more than 1e-06 s)"


def test_the_notebook_is_read_as_a_whole(tmp_path):
    """Aliases bound in one cell (the release's or an answer's) are followed into another."""
    nb = release()
    nb.cells.insert(0, nbformat.v4.new_code_cell("import torch.autograd as A\nfrom backprop_checks import check"))
    nb.cells[2].source = "def twice(x):\n    return 2 * x\ncheck = None"
    nb.cells[4].source = "class Square:\n    def backward(self, g):\n        return A.grad(self.y, self.x, g)"
    found = scan_notebook(write(nb, tmp_path / "n.ipynb"))
    assert [(f.grade_id, f.line, f.what) for f in found] == [
        ("twice", 3, "rebinds check, which the notebook takes from backprop_checks.check"),
        ("sq", 3, "asks autograd inside backward (torch.autograd.grad)")]


def test_the_bounded_scan_gives_the_same_findings(tmp_path):
    nb = release()
    nb.cells[1].source = "import gc\ndef twice(x):\n    return 2 * x"
    assert scan_submission(write(nb, tmp_path / "n.ipynb")) == ScanResult(
        (Finding("twice", 1, "import gc", "imports gc"),))


def test_a_notebook_too_expensive_to_read_is_a_finding(tmp_path):
    nb = release()
    nb.cells.append(nbformat.v4.new_code_cell("x = 1\n" * 8_000_000))  # 48 MB
    path = write(nb, tmp_path / "n.ipynb")
    for bounds, what in [(Bounds(seconds=60, memory_bytes=64 * 2**20), "needed more than 64 MiB"),
                         (Bounds(seconds=0.001), "took longer than 0.001 s")]:
        finding, = scan_submission(path, ScanLimits(student=bounds)).findings
        assert (finding.grade_id, finding.what.split(":")[0]) == ("notebook", "too expensive to read")
        assert what in finding.what


def test_one_child_reads_the_class_and_a_blow_up_costs_only_its_owner(tmp_path):
    paths = []
    for student, source in [("a", "import gc\ndef twice(x):\n    return 2 * x"),
                            ("b", "x = [1]\n" + "x = [x]\n" * 3_000_000),  # 24 MB: the memory bound
                            ("c", "def twice(x):\n    return 2 * x")]:
        nb = release()
        nb.cells[1].source = source
        paths.append(write(nb, tmp_path / f"{student}.ipynb"))
    limits = ScanLimits(max_cell_chars=10**9, student=Bounds(seconds=60, memory_bytes=256 * 2**20))
    found = scan_submissions(paths, limits)
    assert found[str(paths[0])] == ScanResult((Finding("twice", 1, "import gc", "imports gc"),))
    assert "needed more than 256 MiB" in found[str(paths[1])].findings[0].what
    assert found[str(paths[2])] == ScanResult()


def test_findings_are_counted_past_a_few(tmp_path):
    found = scan_source("mul", "import gc\n" * 50)
    assert len(found) == 21 and found[-1].what == "and 30 more findings"


def test_a_cell_with_prompts_is_read_as_ipython_runs_it():
    """``In [1]: g = torch.autograd`` is also Python (an annotation), of another meaning."""
    source = "In [1]: g = torch.autograd\n" + BACKWARD.format(BORROW.format("g.grad")).replace("\n", "\n   ...: ")
    assert {f.what for f in scan_source("mul", source)} == {ASKS}
