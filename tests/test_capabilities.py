"""The verification runner's first line: a backward that asks torch for its derivative, under any
spelling, is reported ("capabilities") and not verified; honest code is clean and verified.

Each attack is a small hand-written answer cell in a course solution; the runner is the real one
(sandboxed), the verdicts are the trusted side's (``verify.verify_notebook``).
"""
import pytest

from grader.specs import replies
from grader.steps import verify
from test_verify import COURSE, forged_result, notebook_with

pytestmark = pytest.mark.sandbox


def verdicts(tmp_path, assignment, changes):
    path = notebook_with(tmp_path, assignment, changes)
    return verify.verify_notebook(verify.spec_for(assignment), path, seed=5, timeout=60, sandboxed=True,
                                  helpers=COURSE.release / assignment)


def function(name, forward, backward, preamble=""):
    """A Function cell: ``forward`` and ``backward`` are bodies (8-space indented lines)."""
    return (f"{preamble}\nclass {name}(torch.autograd.Function):\n    @staticmethod\n"
            f"    def forward(ctx, *inputs):\n{forward}\n\n    @staticmethod\n"
            f"    def backward(ctx, grad_output):\n{backward}\n")


def body(*lines):
    return "\n".join("        " + line for line in lines)


SAVE_X = body("x, = inputs", "ctx.save_for_backward(x)")
SAVE_XY = body("x, y = inputs", "ctx.save_for_backward(x, y)")
MUL_FORWARD = SAVE_XY + "\n" + body("return x * y")
SOFTMAX_FORWARD = body("x, t = inputs", "if t.dim() == 1:", "    t = F.one_hot(t, x.shape[1]).to(x.dtype)",
                       "log_y = torch.log_softmax(x, dim=1)", "ctx.save_for_backward(x, log_y, t)",
                       "return -(t * log_y).sum() / x.shape[0]")

# --- a2: torch's derivative kernels, each under its own spelling ----------------------------------

A2_KERNELS = {
    "relu": ("test_relu", "aten::threshold_backward", function(
        "ReLU", SAVE_X + "\n" + body("return x.clamp(min=0)"),
        body("x, = ctx.saved_tensors", "return torch.ops.aten.threshold_backward(grad_output, x, 0.0)"))),
    "sigmoid": ("test_sigmoid", "aten::sigmoid_backward", function(
        "Sigmoid", body("y = torch.sigmoid(inputs[0])", "ctx.save_for_backward(y)", "return y"),
        body("y, = ctx.saved_tensors", "kernel = getattr(torch.ops.aten, 'sigmoid_' + 'backward')",
             "return kernel(grad_output, y)"))),
    "softmax_with_loss": ("test_softmax_with_loss", "aten::nll_loss_backward", function(
        "SoftmaxWithLoss", SOFTMAX_FORWARD,
        body("x, log_y, t = ctx.saved_tensors", "labels = t.argmax(dim=1)",
             "total = torch.tensor(float(x.shape[0]), dtype=x.dtype)",
             "g = torch.ops.aten.nll_loss_backward(grad_output, log_y, labels, None, 1, -100, total)",
             "return torch.ops.aten._log_softmax_backward_data(g, log_y, 1, x.dtype), None"))),
}
LOG_SOFTMAX_KERNEL = function(
    "SoftmaxWithLoss", SOFTMAX_FORWARD,
    body("x, log_y, t = ctx.saved_tensors", "g = -t * grad_output / x.shape[0]",
         "return torch._log_softmax_backward_data(g, log_y, 1, x.dtype), None"))
AUTOGRAD_GRAD = function(
    "Affine", body("x, W, b = inputs", "ctx.save_for_backward(x, W, b)", "return x @ W + b"),
    body("x, W, b = (v.detach().requires_grad_() for v in ctx.saved_tensors)", "with torch.enable_grad():",
         "    return torch.autograd.grad(x @ W + b, (x, W, b), grad_output)"))


def test_a2_derivative_kernels_and_autograd_grad_are_reported_and_not_verified(tmp_path):
    changes = {cell: source for cell, (_, _, source) in A2_KERNELS.items()}
    got = verdicts(tmp_path, "a2_layers", dict(changes, affine=AUTOGRAD_GRAD))
    for grade_id, capability, _ in A2_KERNELS.values():
        assert not got[grade_id].passed and capability in got[grade_id].evidence, got[grade_id]
        assert capability in got[grade_id].reason
    assert got["test_affine"].evidence == ("autograd_reentered", "grad_enabled")
    assert not got["test_affine"].passed


def test_log_softmax_backward_data_is_reported(tmp_path):
    got = verdicts(tmp_path, "a2_layers", {"softmax_with_loss": LOG_SOFTMAX_KERNEL})
    assert got["test_softmax_with_loss"].evidence == ("aten::_log_softmax_backward_data",)
    assert [grade_id for grade_id, v in got.items() if not v.passed] == ["test_softmax_with_loss"]


# --- a1: autograd re-entered, whatever it is called ---------------------------------------------

VJP_HELPER = '''
def helper(ctx, grad_output):
    x, y = ctx.saved_tensors
    return torch.func.vjp(torch.add, x, y)[1](grad_output)

class Add(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x + y

    backward = staticmethod(helper)
'''

A1_ATTACKS = {
    "backward_inside_backward": ("square", "test_square", {"autograd_reentered", "grad_enabled"}, function(
        "Square", SAVE_X + "\n" + body("return x ** 2"),
        body("x, = ctx.saved_tensors", "with torch.enable_grad():", "    u = x.detach().requires_grad_()",
             "    (u ** 2).backward(grad_output)", "return u.grad"))),
    "func_grad": ("mul", "test_mul", {"autograd_reentered"}, function(
        "Mul", MUL_FORWARD,
        body("x, y = ctx.saved_tensors",
             "return torch.func.grad(lambda a, b: (a * b * grad_output).sum(), argnums=(0, 1))(x, y)"))),
    "func_vjp_under_another_name": ("add", "test_add", {"autograd_reentered"}, VJP_HELPER),
    "aliases": ("mul", "test_mul", {"autograd_reentered", "grad_enabled"}, function(
        "Mul", MUL_FORWARD,
        body("a, b = (v.detach().requires_grad_() for v in ctx.saved_tensors)", "with E():",
             "    return A.grad(a * b, (a, b), grad_output)"),
        preamble="import torch.autograd as A\nfrom torch import enable_grad as E")),
    "exec_string": ("mul", "test_mul", {"autograd_reentered", "grad_enabled"}, function(
        "Mul", MUL_FORWARD,
        body("scope = {'ctx': ctx, 'g': grad_output, 'torch': torch}",
             "exec(bytes.fromhex(CODE).decode(), scope)", "return scope['out']"),
        preamble="CODE = ('a, b = (v.detach().requires_grad_() for v in ctx.saved_tensors)\\n'\n"
                 "        'with torch.enable_grad():\\n'\n"
                 "        '    out = torch.autograd.grad(a * b, (a, b), g)\\n').encode().hex()")),
    "timeit_string": ("mul", "test_mul", {"autograd_reentered", "grad_enabled"}, function(
        "Mul", MUL_FORWARD,
        body("scope = {'ctx': ctx, 'g': grad_output, 'torch': torch, 'out': []}",
             "timeit.Timer(STMT, globals=scope).timeit(1)", "return scope['out'][0]"),
        preamble="import timeit\nSTMT = ('a, b = (v.detach().requires_grad_() for v in ctx.saved_tensors)\\n'\n"
                 "        'torch.set_grad_enabled(True)\\n'\n"
                 "        'out.append(torch.autograd.grad(a * b, (a, b), g))\\n')")),
    "thread": ("mul", "test_mul", {"autograd_reentered", "grad_enabled"}, function(
        "Mul", MUL_FORWARD,
        body("x, y = ctx.saved_tensors", "out = []",
             "def work():",
             "    a, b = x.detach().requires_grad_(), y.detach().requires_grad_()",
             "    out.append(torch.autograd.grad(a * b, (a, b), grad_output))",
             "worker = threading.Thread(target=work)", "worker.start()", "worker.join()", "return out[0]"),
        preamble="import threading")),
    "forward_mode_jvp": ("square", "test_square", {"aten::_make_dual"}, function(
        "Square", SAVE_X + "\n" + body("return x ** 2"),
        body("x, = ctx.saved_tensors",
             "return torch.func.jvp(lambda v: v ** 2, (x,), (grad_output,))[1]"))),
}


@pytest.mark.parametrize("attack", sorted(A1_ATTACKS))
def test_a1_autograd_under_any_spelling_is_reported_and_not_verified(tmp_path, attack):
    cell, grade_id, capabilities, source = A1_ATTACKS[attack]
    got = verdicts(tmp_path, "a1_backprop", {cell: source})
    assert set(got[grade_id].evidence) == capabilities and not got[grade_id].passed, got[grade_id]
    assert [g for g, v in got.items() if v.evidence] == [grade_id]


def test_the_runners_measures_undone_are_themselves_evidence(tmp_path):
    restore = ("import gc\nfor thing in gc.get_objects():\n    if isinstance(thing, torch.library.Library) "
               "and (thing.ns, thing.kind, thing.dispatch_key) == ('aten', 'IMPL', ''):\n        thing._destroy()\n")
    got = verdicts(tmp_path, "a1_backprop", {
        "square": lambda source: restore + source,
        "mul": function("Mul", MUL_FORWARD, body(
            "from torch.utils._python_dispatch import _pop_mode", "_pop_mode()",
            "x, y = ctx.saved_tensors", "return grad_output * y, grad_output * x")),
    })
    assert got["test_square"].evidence == ("kernels_restored",)
    assert got["test_mul"].evidence == ("kernels_restored", "observer_removed")
    assert not got["test_square"].passed and not got["test_mul"].passed


# --- a3: a numerical gradient that is not numerical ---------------------------------------------

A3_ATTACKS = {
    "func_grad": ({"autograd_reentered", "aten::select_backward"}, "def numerical_gradient(f, x, h=1e-4):\n"
                  "    return torch.func.grad(lambda v: f(v))(x.detach())\n"),
    "autograd_grad": ({"autograd_reentered", "aten::select_backward"}, "def numerical_gradient(f, x, h=1e-4):\n"
                      "    v = x.detach().clone().requires_grad_()\n    with torch.enable_grad():\n"
                      "        return torch.autograd.grad(f(v), v)[0]\n"),
    "forward_mode": ({"aten::_make_dual"}, "def numerical_gradient(f, x, h=1e-4):\n"
                     "    grad = torch.zeros_like(x).reshape(-1)\n    for i in range(grad.numel()):\n"
                     "        e = torch.zeros_like(grad)\n        e[i] = 1\n"
                     "        grad[i] = torch.func.jvp(f, (x.detach(),), (e.reshape(x.shape),))[1]\n"
                     "    return grad.reshape(x.shape)\n"),
}


@pytest.mark.parametrize("attack", sorted(A3_ATTACKS))
def test_a3_numerical_gradient_by_autograd_is_reported(tmp_path, attack):
    capabilities, source = A3_ATTACKS[attack]
    got = verdicts(tmp_path, "a3_two_layer_net", {"numerical_gradient": source})
    assert set(got["test_numerical_gradient"].evidence) == capabilities, got["test_numerical_gradient"]
    assert not got["test_numerical_gradient"].passed
    assert got["test_layers"].passed and got["test_two_layer_net"].passed


def test_a_built_in_op_in_a_nets_forward_is_differentiated_without_evidence(tmp_path):
    """A net's forward may use torch's own ops between the layers (rows stacked outside any
    Function): the runner differentiates it with nothing taken away (the net kind's region), and
    it verifies, with no capability reported."""
    got = verdicts(tmp_path, "a3_two_layer_net", {"two_layer_net": (
        'hidden = ReLU.apply(Affine.apply(x, p["W1"], p["b1"]))',
        'hidden = ReLU.apply(Affine.apply(x, torch.stack([p["W1"][i] for i in range(len(p["W1"]))]), p["b1"]))')})
    verdict = got["test_two_layer_net"]
    assert (verdict.passed, verdict.evidence) == (True, ())


# --- honest code: clean and verified in full -----------------------------------------------------

HONEST_A1 = {
    "square": function("Square", SAVE_X + "\n" + body("return x ** 2"), body(
        "x, = ctx.saved_tensors", "with torch.no_grad():", "    return grad_output * 2 * x")),
    "add": lambda source: source.replace("return grad_output, grad_output", (
        "with torch.inference_mode():\n            return grad_output.clone(), grad_output.clone()")),
    "mul": "from torch.autograd import Function, gradcheck\n" + function(
        "Mul", MUL_FORWARD, body("x, y = ctx.saved_tensors", "return grad_output * y, grad_output * x")
    ).replace("(torch.autograd.Function)", "(Function)") + (
        "\n_x = torch.randn(3, dtype=torch.float64, requires_grad=True)\n"
        "assert gradcheck(Mul.apply, (_x, _x.detach().clone().requires_grad_()))\n"
        "torch.sigmoid(_x).sum().backward()  # torch's autograd, shown beside my own\n"),
}

BOOK_SOFTMAX = function("SoftmaxWithLoss", SOFTMAX_FORWARD, body(
    "x, log_y, t = ctx.saved_tensors", "n = x.shape[0]", "dx = log_y.exp()",
    "dx[torch.arange(n), t.argmax(dim=1)] -= 1", "return dx / n * grad_output, None"))


@pytest.mark.parametrize("assignment", ["a1_backprop", "a2_layers", "a3_two_layer_net"])
def test_the_course_solutions_are_clean_and_verified(tmp_path, assignment):
    got = verdicts(tmp_path, assignment, {})
    assert got == {grade_id: verify.Verdict(True) for grade_id in verify.spec_for(assignment).TESTS}


def test_honest_idioms_are_clean_and_verified(tmp_path):
    """no_grad and inference_mode in a backward, Function and gradcheck imported, gradcheck and
    torch's autograd used beside the answer in an answer cell."""
    got = verdicts(tmp_path, "a1_backprop", HONEST_A1)
    assert got == {grade_id: verify.Verdict(True) for grade_id in verify.spec_for("a1_backprop").TESTS}


def test_the_books_softmax_indexing_is_clean_and_verified(tmp_path):
    got = verdicts(tmp_path, "a2_layers", {"softmax_with_loss": BOOK_SOFTMAX})
    assert got == {grade_id: verify.Verdict(True) for grade_id in verify.spec_for("a2_layers").TESTS}


def test_a_graph_built_in_a_forward_is_reported(tmp_path):
    """Grad mode switched on inside a Function's forward, to call autograd's own node in backward."""
    got = verdicts(tmp_path, "a1_backprop", {"square": function(
        "Square", body("x = inputs[0].detach().requires_grad_()", "with torch.enable_grad():",
                       "    y = x ** 2", "ctx.node = y.grad_fn", "return y.detach()"),
        body("return ctx.node(grad_output)"))})
    assert got["test_square"].evidence == ("grad_enabled",) and not got["test_square"].passed


def test_a_graph_built_in_a_thread_is_reported(tmp_path):
    """A new thread starts with grad mode on: the same graph, built there without enable_grad."""
    got = verdicts(tmp_path, "a1_backprop", {"square": "import threading\n" + function(
        "Square", body("x = inputs[0].detach().requires_grad_()", "out = []",
                       "worker = threading.Thread(target=lambda: out.append(x ** 2))", "worker.start()",
                       "worker.join()", "ctx.node = out[0].grad_fn", "return out[0].detach()"),
        body("return ctx.node(grad_output)"))})
    assert got["test_square"].evidence == ("grad_enabled",) and not got["test_square"].passed


# --- the reply's list read as untrusted data -------------------------------------------------------

@pytest.mark.parametrize("value,malformed", [
    (["aten::sigmoid_backward", "autograd_reentered"], False), ([], False),
    (None, True), ("autograd_reentered", True), ([1], True), (["two words"], True), (["<b>x</b>"], True),
    (["x" * 81], True), (["grad_enabled"] * 9, True)])
def test_the_capabilities_field_is_validated(value, malformed):
    reply = {"id": "1", "result": {}} if value is None else {"id": "1", "result": {}, "capabilities": value}
    if malformed:
        with pytest.raises(replies.Malformed):
            replies.capabilities(reply)
    else:
        assert replies.capabilities(reply) == value


@pytest.mark.parametrize("encode,reason", [
    ("json.dumps(reply).encode() + b'\\n'", "malformed reply: no list of the capabilities used"),
    ("json.dumps({**reply, 'capabilities': 'none'}).encode() + b'\\n'",
     "malformed reply: no list of the capabilities used")])
def test_a_reply_without_a_valid_list_is_not_verified(tmp_path, encode, reason):
    """The solution's true numbers, with the list dropped or garbled on the way out."""
    got = verdicts(tmp_path, "a1_backprop", {"square": lambda source: source + "\n" + forged_result(
        "reply.get('result')", encode)})
    assert got == {grade_id: verify.Verdict(False, reason) for grade_id in verify.spec_for("a1_backprop").TESTS}


# A net that never learns, and predicts by hunting for the held-out labels anywhere in the process
# (globals, the gc heap): they were a kernel global once. Now the runner gets test inputs only.
LABEL_HUNT = '''
import gc

def _hunt(x):
    n = len(x)
    for thing in gc.get_objects():
        if isinstance(thing, torch.Tensor) and thing.dtype == torch.int64 and thing.shape == (n,):
            return torch.nn.functional.one_hot(thing.clamp(0, 9), 10).double()
    return torch.zeros(n, 10, dtype=torch.float64)

def train(net, x_train, t_train, epochs=20, batch_size=100, lr=0.5, seed=0, after_epoch=None):
    net.predict = _hunt
    return [0.0] * epochs
'''


def test_a3_net_that_never_learns_cannot_score_by_finding_the_labels(tmp_path):
    got = verdicts(tmp_path, "a3_two_layer_net", {"train": LABEL_HUNT})
    assert not got["test_accuracy"].passed, got["test_accuracy"]
    assert got["test_layers"].passed and got["test_two_layer_net"].passed
