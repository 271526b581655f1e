"""The static scan of answer cells: honest solutions pass clean, each class of escape is named."""
import glob

import pytest

from grader.course import REPO_ROOT
from grader.steps.scan import scan_notebook, scan_source

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
                 {"imports from torch.func", "asks autograd inside backward (vjp)"}),
    "grad_mode_c": ("torch._C._set_grad_enabled(True)", {"switches autograd on (torch._C._set_grad_enabled)"}),
    "frames": ("import sys\nframe = sys._getframe(1).f_back", {"imports sys", "uses sys._getframe", "uses sys._getframe().f_back"}),
    "gc_walk": ("import gc\nobjs = gc.get_objects()", {"imports gc"}),
    "inspect": ("import inspect as i", {"imports inspect"}),
    "ctypes": ("from ctypes import CDLL", {"imports ctypes"}),
    "open": ("data = open('job.json').read()", {"uses open"}),
    "open_alias": ("o = open\no('x')", {"uses open"}),
    "os_fd": ("import os\nos.write(3, b'{}')", {"imports os"}),
    "dunder_import": ("m = __import__('o' + 's')", {"uses __import__"}),
    "exec": ("exec('x = 1')", {"uses exec"}),
    "computed_getattr": ("getattr(torch, 'all' + 'close')", {"getattr with a computed name"}),
    "setattr_library": ("setattr(torch, 'allclose', print)", {"setattr on a library"}),
    "subclasses": ("().__class__.__base__.__subclasses__()",
                   {"uses __class__", "uses __base__", "uses __subclasses__"}),
    "globals_of": ("f.__globals__['check'] = None", {"uses __globals__"}),
    "builtins": ("__builtins__.print = None", {"uses __builtins__"}),
    "events": ("get_ipython().events.register('pre_run_cell', print)",
               {"uses get_ipython", "uses get_ipython().events"}),
    "transformers": ("ip = get_ipython()\nip.input_transformers_post.append(f)",
                     {"uses get_ipython", "uses ip.input_transformers_post"}),
    "other_magic": ("%run other.py", {"uses get_ipython", "uses get_ipython().run_line_magic"}),
    "shell": ("!cat /etc/passwd", {"uses get_ipython"}),
    "patch_library": ("torch.allclose = lambda *a, **k: True", {"changes a library (torch.allclose)"}),
    "patch_checks": ("import backprop_checks\nbackprop_checks.check_function = print",
                     {"changes a library (backprop_checks.check_function)"}),
    "patch_tensor": ("torch.Tensor.__eq__ = lambda *a: True",
                     {"changes a library (torch.Tensor)", "changes a library (torch.Tensor.__eq__)"}),
}


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


def test_code_that_does_not_parse_has_no_findings():
    assert scan_source("mul", "def broken(:\n    import gc") == []
