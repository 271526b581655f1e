"""The cases a spec lists: inputs drawn at grading time, answers from torch, judged on the trusted side.

A case builder is a function of a ``torch.Generator`` that returns a ``Case``: the request the
sandboxed runner gets (names, inputs and upstream gradient as numbers, and for a graph or a
numerical gradient the spec's own reference source) and the judge that holds torch's answers
and reads the runner's untrusted result (``replies``). Built and judged on the trusted side only;
the answers never leave it.

The judges are as strict as the notebook's checks (``backprop_checks.py``) and as tolerant as
torch: a gradient must have its input's dtype; a broadcast-shaped gradient is summed down as the
engine does, unless the case wants exact shapes (Affine's bias: the sum over the batch is the
skill); trailing ``None``s beyond the inputs are accepted, as torch accepts them.
"""
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .replies import Malformed, field, flag, names, numbers, numbers_list


@dataclass(frozen=True)
class Case:
    """One check: what the runner is asked (numbers and names), and the judge of its result."""
    request: dict
    judge: Callable  # result -> '' when right, else what is wrong
    reference: Callable | None = None  # a Function's torch ops: grader.steps.mistakes names a wrong answer

    def reason(self, result):
        """'' when the result is right, else what is wrong with it (malformed included)."""
        try:
            return self.judge(result)
        except Malformed as error:
            return f"malformed result: {error}"


def encode(tensor):
    """A tensor as the runner's numbers: dtype name, shape, flat values."""
    tensor = tensor.detach()
    return {"dtype": str(tensor.dtype).replace("torch.", ""), "shape": list(tensor.shape),
            "values": tensor.reshape(-1).tolist()}


def _dtype(tensor):
    return str(tensor.dtype).replace("torch.", "")


def _random(shape, generator, zeros=False):
    values = torch.rand(shape, generator=generator, dtype=torch.float64) * 3 + 0.5
    signs = torch.where(torch.rand(shape, generator=generator) < 0.3, -1.0, 1.0).to(torch.float64)
    values = values * signs
    if zeros:  # every third element exactly 0, as the notebook's random_inputs(zeros=True)
        values.view(-1)[::3] = 0
    return values


@functools.cache
def course_cases():
    """The case table the notebooks' hidden tests draw from (``backprop_checks.CASES``, in the
    course's own helper module): one source, so the two cannot drift apart. Read from the
    solutions, never from anything a student sent."""
    path = Path(__file__).resolve().parents[2] / "solutions" / "a1_backprop" / "backprop_checks.py"
    spec = importlib.util.spec_from_file_location("course_backprop_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES, module.LARGE_LOGITS


def _upstream(shape, generator):
    return torch.rand(shape, generator=generator, dtype=torch.float64) * 2 + 0.5


def _tolerance(dtype):
    """float64: a right formula agrees with torch to ~1e-15, float32's 7 digits (cast back) do not."""
    return {"rtol": 1e-9, "atol": 1e-12} if dtype in ("float64", torch.float64) else {"rtol": 1e-5, "atol": 1e-7}


def _close(got, want):
    return got.shape == tuple(want.shape) and torch.allclose(got.values, want.double(), **_tolerance(want.dtype))


def _broadcastable(small, big):
    try:
        return torch.broadcast_shapes(small, big) == big
    except RuntimeError:
        return False


class Labels:
    """A non-differentiable input: ``count`` random class labels, as integers or one-hot rows."""

    def __init__(self, count, classes, one_hot=False):
        self.count, self.classes, self.one_hot = count, classes, one_hot

    def draw(self, generator):
        labels = torch.randint(self.classes, (self.count,), generator=generator)
        return torch.nn.functional.one_hot(labels, self.classes).double() if self.one_hot else labels


def _draw(shapes, generator, scale=1.0, zeros=False):
    return [s.draw(generator) if isinstance(s, Labels) else scale * _random(s, generator, zeros) for s in shapes]


# --- a torch.autograd.Function ------------------------------------------------------------------

def function_case(target, reference, shapes, exact_shapes=False, zeros=False, scale=1.0):
    """A Function ``target`` checked against ``reference`` (torch ops) on fresh inputs.

    shapes: one entry per input, a shape (a random float64 input that gets a gradient) or a
    ``Labels`` (an input without one). zeros: inputs with exact zeros (ReLU's kink, where torch's
    gradient is 0); scale: inputs times ``scale`` (large logits).
    """
    def build(generator):
        inputs = _draw(shapes, generator, scale, zeros)
        leaves = [x.clone().requires_grad_(not isinstance(s, Labels)) for x, s in zip(inputs, shapes)]
        out = reference(*leaves)
        upstream = _upstream(out.shape, generator)
        found = iter(torch.autograd.grad(out, [x for x in leaves if x.requires_grad], upstream))
        grads = [next(found) if x.requires_grad else None for x in leaves]
        request = {"kind": "function", "target": target, "inputs": [encode(x) for x in inputs],
                   "grad": [x.requires_grad for x in leaves], "upstream": encode(upstream)}
        return Case(request, lambda result: _judge_function(target, inputs, out.detach(), grads,
                                                            exact_shapes, result), reference)
    return build


def _judge_function(target, inputs, out, grads, exact_shapes, result):
    if not flag(result, "own_node"):
        return f"the result was not produced by {target}.apply"
    if not _close(numbers(field(result, "out"), "out"), out):
        return "forward values differ"
    returned = numbers_list(result, "returned")
    if len(returned) < len(inputs) or any(g is not None for g in returned[len(inputs):]):
        return f"{len(returned)} gradients returned for {len(inputs)} inputs"
    if flag(result, "upstream_changed"):
        return "backward changed grad_output in place"
    for number, (got, want, x) in enumerate(zip(returned, grads, inputs)):
        problem = want is not None and _judge_gradient(number, got, want, x, exact_shapes)
        if problem:
            return problem
    if "torch_error" in result:
        error = field(result, "torch_error")
        return f"torch rejected backward's result: {error[:300] if isinstance(error, str) else '?'}"
    differentiable = [(number, want) for number, want in enumerate(grads) if want is not None]
    for (number, want), got in zip(differentiable, numbers_list(result, "through_torch", len(differentiable))):
        if got is None or not _close(got, want):
            return f"wrong gradient for input {number} through torch's autograd"
    return ""


def _judge_gradient(number, got, want, x, exact_shapes):
    """'' if backward's raw gradient for input ``number`` is right, as the notebook's check judges it."""
    if got is None:
        return f"no gradient for input {number}"
    if got.dtype != _dtype(x):
        return f"gradient for input {number} is {got.dtype}, the input {_dtype(x)}"
    values = got.values
    if got.shape != tuple(want.shape):
        if exact_shapes or not _broadcastable(want.shape, got.shape):
            return f"gradient for input {number} has shape {got.shape}, the input {tuple(want.shape)}"
        values = values.sum_to_size(want.shape)  # as autograd does
    if not torch.allclose(values, want, **_tolerance(x.dtype)):
        if torch.allclose(values, want, **_tolerance("float32")):
            return f"gradient for input {number} has only float32's precision"
        return f"wrong gradient for input {number}"
    return ""


# --- a graph built from Functions ---------------------------------------------------------------

def graph_case(target, reference, values, output, nodes, substitute, names_substituted):
    """A graph-building function ``target``: every returned node's forward value and gradient.

    reference: the same graph from torch ops, returning the same structure (a tuple or a dict);
    output: the key of the node that is differentiated; nodes: {key: the Function that must
    make it}. The graph runs with ``names_substituted`` bound to the reference Functions that
    ``substitute`` (source) defines, so its points depend on the graph alone, not on the
    student's own backward (graded on its own).
    """
    def build(generator):
        inputs = [torch.tensor([v * float(1 + torch.rand(1, generator=generator))], dtype=torch.float64)
                  for v in values]
        leaves = [x.clone().requires_grad_() for x in inputs]
        returned = reference(*leaves)
        made = [returned[key] for key in nodes]
        upstream = _upstream(returned[output].shape, generator)
        grads = torch.autograd.grad(returned[output], leaves + made, upstream)
        request = {"kind": "graph", "target": target, "inputs": [encode(x) for x in inputs],
                   "nodes": list(nodes), "output": output, "upstream": encode(upstream),
                   "substitute": substitute, "names": list(names_substituted)}
        expected = [(key, function, value.detach(), grad) for (key, function), value, grad
                    in zip(nodes.items(), made, grads[len(leaves):])]
        return Case(request, lambda result: _judge_graph(expected, grads[:len(leaves)], result))
    return build


def _judge_graph(expected, leaf_grads, result):
    made_by = names(result, "made_by", len(expected))
    values = numbers_list(result, "values", len(expected))
    node_grads = numbers_list(result, "node_grads", len(expected))
    for (key, function, value, grad), maker, got_value, got_grad in zip(expected, made_by, values, node_grads):
        if maker != function:
            return f"node {key!r} was not made by {function}.apply (made by {maker})"
        if got_value is None or not _close(got_value, value):
            return f"wrong forward value at node {key!r}"
        if got_grad is None or not _close(got_grad, grad):
            return f"wrong gradient at node {key!r}"
    for number, (got, want) in enumerate(zip(numbers_list(result, "leaf_grads", len(leaf_grads)), leaf_grads)):
        if got is None or not _close(got, want):
            return f"wrong gradient for input {number}"
    return ""


# --- a net built in the runner, its layers the spec's references ---------------------------------

def _judge_model(out, grads, functions, result):
    found = set(names(result, "functions"))
    if not functions <= found:
        return f"not built from {', '.join(sorted(functions - found))} (found {', '.join(sorted(found)) or 'none'})"
    if not _close(numbers(field(result, "out"), "out"), out):
        return "forward values differ"
    for (name, want), got in zip(grads.items(), numbers_list(result, "grads", len(grads))):
        if got is None:
            return f"no gradient for {name}"
        if got.dtype != _dtype(want) or not _close(got, want):
            return f"wrong gradient for {name}"
    return ""


def layered_net_case(target, init, params, inputs, reference, functions, references):
    """The student's net class ``target(*init)``, its parameters set to fresh values, its layers
    computing as ``references``.

    params: {name: shape}; inputs: shapes or ``Labels``; reference(params, *inputs): the same loss
    from torch ops; functions: the custom Functions the loss must be built from. The runner ("net"
    kind) swaps the spec's reference Functions into the student's layer classes of those names (by
    object, so the net's points depend on the net's own code) and copies the parameters into the
    net's own tensors in place (the book's design, layer objects that hold W and b, sees them).
    """
    def build(generator):
        values = {name: _random(shape, generator) * 0.3 for name, shape in params.items()}
        data = _draw(inputs, generator)
        leaves = {name: v.clone().requires_grad_() for name, v in values.items()}
        out = reference(leaves, *data)
        upstream = _upstream(out.shape, generator)
        grads = torch.autograd.grad(out, list(leaves.values()), upstream, retain_graph=True)
        plain = torch.autograd.grad(out, list(leaves.values()))
        request = {"kind": "net", "references": references, "layers": sorted(functions), "source": "student",
                   "net": target, "init": list(init), "dtype": "float64", "seed": 0,
                   "params": [[name, encode(v)] for name, v in values.items()],
                   "loss": {"inputs": [encode(x) for x in data], "upstream": encode(upstream), "gradient": True}}
        return Case(request, lambda result: _judge_model(out.detach(), dict(zip(params, grads)), functions, result)
                    or _judge_gradient_method(dict(zip(params, plain)), result))
    return build


def _judge_gradient_method(grads, result):
    """The net's own gradient(), called a second time, still gives the loss's gradient."""
    for (name, want), got in zip(grads.items(), numbers_list(result, "gradient", len(grads))):
        if got is None or not _close(got, want):
            return f"gradient() called a second time gives a wrong gradient for {name} (.grad accumulated?)"
    return ""


def trained_case(target, data, references, net, init, options, minimum):
    """The student's training function ``target(net, x_train, t_train, **options)`` on a reference net.

    data(generator) -> (x_train, t_train, x_test, t_test), drawn at grading time. The runner gets
    the training data and the test inputs only; the test labels stay here, where the accuracy of
    the runner's predictions is computed: at least ``minimum`` passes.
    """
    def build(generator):
        x_train, t_train, x_test, t_test = data(generator)
        request = {"kind": "net", "references": references, "layers": [], "source": "reference", "net": net,
                   "init": list(init), "dtype": "float32", "seed": int(torch.randint(2**31, (1,), generator=generator)),
                   "train": {"target": target, "inputs": [encode(x_train), encode(t_train)], "options": options},
                   "predict": encode(x_test)}
        return Case(request, lambda result: _judge_predictions(t_test, minimum, result))
    return build


def sgd_case(target, references, net, init, params, inputs, options):
    """The student's training function run on a small float64 reference net from known parameters:
    after it, the net's loss and gradients on the training data must be those of plain minibatch
    SGD (``param -= lr * grad`` per batch, the notebook's batches), computed here."""
    def build(generator):
        values = {name: _random(shape, generator) * 0.3 for name, shape in params.items()}
        x, t = _draw(inputs, generator)
        leaves = {name: v.clone().requires_grad_() for name, v in values.items()}
        batches = torch.Generator().manual_seed(options["seed"])
        for _ in range(options["epochs"]):
            for batch in torch.randperm(len(x), generator=batches).split(options["batch_size"]):
                grads = torch.autograd.grad(_net_loss(leaves, x[batch], t[batch]), list(leaves.values()))
                with torch.no_grad():
                    for leaf, grad in zip(leaves.values(), grads):
                        leaf -= options["lr"] * grad
        out = _net_loss(leaves, x, t)
        grads = torch.autograd.grad(out, list(leaves.values()))
        request = {"kind": "net", "references": references, "layers": [], "source": "reference", "net": net,
                   "init": list(init), "dtype": "float64", "seed": 0,
                   "params": [[name, encode(v)] for name, v in values.items()],
                   "train": {"target": target, "inputs": [encode(x), encode(t)], "options": options},
                   "loss": {"inputs": [encode(x), encode(t)], "upstream": encode(torch.tensor(1.0, dtype=torch.float64))}}
        return Case(request, lambda result: _judge_sgd(out.detach(), dict(zip(params, grads)), result))
    return build


def _judge_sgd(out, grads, result):
    problem = _judge_model(out, grads, set(), result)
    return problem and f"after training, {problem}: the parameters are not those of plain SGD steps"


def _net_loss(p, x, t):
    return torch.nn.functional.cross_entropy(torch.relu(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"], t)


def _judge_predictions(labels, minimum, result):
    predicted = numbers(field(result, "predicted"), "predicted")
    if predicted.shape != tuple(labels.shape):
        return f"{predicted.shape} predictions for {len(labels)} test inputs"
    accuracy = (predicted.values == labels.double()).double().mean().item()
    if accuracy < minimum:
        return f"held-out accuracy {accuracy:.3f} < {minimum} after training with your train()"
    return ""


# --- a numerical gradient -----------------------------------------------------------------------

CUBIC = "lambda v, w: (w * v ** 3).sum() / 3 + v.reshape(-1)[0] * v.reshape(-1)[-1]"


def numerical_case(target, shape, requires_grad=False, function=CUBIC, reads_x=False):
    """A numerical gradient ``target(f, x)`` of ``function`` at a fresh float64 ``x`` of ``shape``.

    requires_grad: x is a parameter that requires grad (as when checking a net's gradient).
    reads_x: f ignores its argument and reads x itself (the book's ``lambda _: net.loss(x, t)``).
    Judged as the notebook judges it: float64, x's shape, x put back, relative error < 1e-7.
    """
    def build(generator):
        x, w = _random(shape, generator), _random(shape, generator)
        leaf = x.clone().requires_grad_()
        (want,) = torch.autograd.grad(eval(function, {"torch": torch})(leaf, w), leaf)
        request = {"kind": "numerical", "target": target, "x": encode(x), "requires_grad": requires_grad,
                   "function": function, "constants": [encode(w)], "reads_x": reads_x}
        return Case(request, lambda result: _judge_numerical(want, result))
    return build


def _judge_numerical(want, result):
    got = numbers(field(result, "out"), "out")
    if got.dtype != _dtype(want):
        return f"the gradient is {got.dtype}, x is {_dtype(want)}"
    if got.shape != tuple(want.shape):
        return f"the gradient has shape {got.shape}, x {tuple(want.shape)}"
    if flag(result, "x_changed"):
        return "x was not put back"
    error = ((got.values - want).abs().max() / (got.values.abs() + want.abs()).max().clamp_min(1e-12)).item()
    if error >= 1e-7:
        return f"relative error {error:.0e} against torch's gradient (a central difference gives < 1e-7)"
    return ""
