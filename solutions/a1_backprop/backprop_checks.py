"""Gradient checks for the course's exercises, with messages that name the mistake.

Every check compares a student's ``torch.autograd.Function`` with PyTorch's own autograd on the
same inputs (the oracle), with an upstream gradient that is not all ones, and explains a failure
in Korean and English, with the formula the student should have used. The Korean uses the terms
of the book's Korean edition: 기울기 (gradient), 순전파 (forward), 역전파 (backward), 상류 기울기
(upstream gradient), 형상 (shape). The notebooks' visible and hidden tests and their "check my
progress" cells call these functions.

The graph exercises are graded on their own (``check_graph``): while the student's graph is built
and differentiated, the student's own Mul and Add classes compute as reference Functions that the
grader's hidden tests define (``behaving_as``), so a wrong ``Mul.backward`` costs only the Mul
exercise. This module holds no reference Function: nothing here computes a graded answer.

Mistakes recognised from the numbers (see ``diagnose``): ``grad_output`` ignored, operands
swapped, a sign error, a transposed gradient, a missing sum over the batch, a factor such as the
batch size, ``grad_output`` changed in place, the wrong number of returned gradients, float32
where float64 was needed, and a forward instead of a central difference.
"""
import contextlib
from contextlib import contextmanager

import torch

__all__ = ["BROADCASTS", "CASES", "GradientMistake", "LARGE_LOGITS", "behaving_as", "check_function", "check_graph", "check_numerical_gradient",
           "diagnose", "graph_functions", "random_inputs", "relative_error", "report_progress",
           "show_book_numbers"]


class GradientMistake(AssertionError):
    """A wrong gradient, with a message for the student in Korean and English."""

    def __init__(self, name, korean, english, formula=""):
        hint = f"\n  올바른 식 / expected: {formula}" if formula else ""
        super().__init__(f"{name}: {korean}\n{name}: {english}{hint}")


def random_inputs(*shapes, seed=1234, dtype=torch.float64, zeros=False, scale=1.0):
    """Distinct random leaves that require grad, one per shape (no two equal values, none near 0).

    zeros: every third element exactly 0 (where ReLU's gradient is torch's convention, 0);
    scale: values times ``scale`` (large logits: a softmax that does not subtract the max overflows).
    """
    generator = torch.Generator().manual_seed(seed)
    leaves = []
    for shape in shapes:
        values = torch.rand(shape, generator=generator, dtype=dtype) * 3 + 0.5
        signs = torch.where(torch.rand(shape, generator=generator) < 0.3, -1.0, 1.0)
        values = values * signs.to(dtype) * scale
        if zeros:
            values.view(-1)[::3] = 0
        leaves.append(values.requires_grad_())
    return leaves


# --- the cases: one table for the notebooks' hidden tests and the grader's own check --------------

# Input shapes: equal shapes, scalars, one side broadcast ((n,), (1, n), (n, 1)), both sides
# broadcast ((3, 1) with (1, 4)), three dimensions.
BROADCASTS = [[(), ()], [(6,), (6,)], [(3, 4), (4,)], [(3, 4), (3, 1)], [(4,), (3, 4)], [(3, 5), (1, 5)],
              [(3, 1), (1, 4)], [(2, 1, 4), (3, 1)]]
CASES = {
    "Square": [[()], [(7,)], [(3, 5)]],
    "Add": BROADCASTS,
    "Mul": BROADCASTS,
    "ReLU": [[(7,)], [(4, 6)], [(2, 3, 5)]],  # with exact zeros (``zeros=True``)
    "Sigmoid": [[()], [(8,)], [(3, 5)]],
    "Affine": [[(5, 3), (3, 4), (4,)], [(1, 6), (6, 2), (2,)], [(7, 4), (4, 4), (4,)]],
    "SoftmaxWithLoss": [(6, 4), (3, 5), (4, 3)],  # logits; labels integer, one-hot, integer
}
LARGE_LOGITS = 300.0  # logits up to about ±1000: exp overflows above 710 in float64


def relative_error(a, b):
    """max |a - b| / max(|a| + |b|), the CS231n measure: about 1e-8 or less for a right gradient."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return ((a - b).abs().max() / (a.abs() + b.abs()).max().clamp_min(1e-12)).item()


# --- naming the mistake -------------------------------------------------------------------------

FLOAT32 = ("float64가 필요한 곳에서 float32를 썼습니다. torch.zeros(shape)와 torch.tensor(...)는 기본이 "
           "float32라서 유효 숫자가 7자리쯤뿐입니다 (torch.zeros_like(x)를 쓰거나 dtype=x.dtype을 주세요)",
           "float32 where float64 was needed: torch.zeros(shape) and torch.tensor(...) default to "
           "float32, which keeps only ~7 digits (use torch.zeros_like(x) or dtype=x.dtype)")


def _close(a, b, rtol=1e-5, atol=1e-7):
    return b is not None and a.shape == b.shape and torch.allclose(a, b, rtol=rtol, atol=atol)


def _right(got, expected):
    """A right gradient: in float64 a formula agrees with torch to ~1e-15, float32's 7 digits do not."""
    return _close(got, expected, *((1e-9, 1e-12) if expected.dtype == torch.float64 else (1e-5, 1e-7)))


FLOAT32_DIGITS = ("기울기가 float64이지만 float32의 유효 숫자(7자리쯤)밖에 없습니다. 중간에 float32 텐서(torch.zeros(shape), "
                  "torch.tensor(...))를 거쳤나요? (torch.zeros_like(x)를 쓰거나 dtype=x.dtype을 주세요)",
                  "the gradient is float64 but has only float32's ~7 digits: did it pass through a float32 "
                  "tensor (torch.zeros(shape), torch.tensor(...))? Use torch.zeros_like(x) or dtype=x.dtype")


def _factor(got, expected):
    """The constant c with got == c * expected, if there is one (and c is not 1)."""
    nonzero = expected.abs() > 1e-6
    if not nonzero.any():
        return None
    c = (got[nonzero] / expected[nonzero]).mean().item()
    return c if abs(c - 1) > 1e-3 and _close(got, c * expected) else None


def diagnose(got, expected, ones_expected=None, swapped=None):
    """Name the misconception that turns ``expected`` into ``got``: (korean, english) or None.

    ``ones_expected`` is the gradient for an all-ones upstream gradient (what a backward that
    ignores ``grad_output`` returns); ``swapped`` is the other operand's expected gradient (what a
    backward that swaps its operands returns).
    """
    got = torch.as_tensor(got)
    if got.dtype == torch.float32 and expected.dtype == torch.float64:
        return FLOAT32
    if got.shape != expected.shape:
        if got.dim() > expected.dim() and _close(got.sum_to_size(expected.shape), expected):
            return ("배치에 대해 합하지 않았습니다. 편향(bias)은 모든 행에 더해지므로 그 기울기는 "
                    f"grad_output을 배치 축(dim=0)으로 합한 것입니다 (기울기의 형상 {tuple(got.shape)}, "
                    f"입력의 형상 {tuple(expected.shape)})",
                    f"missing sum over the batch: the gradient has shape {tuple(got.shape)}, the input "
                    f"{tuple(expected.shape)}; a bias is added to every row, so its gradient is "
                    "grad_output summed over the batch (dim=0)")
        if got.dim() == 2 and _close(got.T, expected):
            return (f"기울기가 전치되어 있습니다. 형상이 {tuple(got.shape)}이지만 입력과 같은 "
                    f"{tuple(expected.shape)}이어야 합니다",
                    f"transposed gradient: shape {tuple(got.shape)}, but it must have the input's "
                    f"shape {tuple(expected.shape)}")
        return (f"기울기의 형상은 {tuple(got.shape)}, 입력의 형상은 {tuple(expected.shape)}입니다. 둘이 같아야 합니다",
                f"gradient shape {tuple(got.shape)} differs from the input's {tuple(expected.shape)}")
    if _right(got, expected):
        return None
    if expected.dtype == torch.float64 and got.dtype == torch.float64 and _close(got, expected):
        return FLOAT32_DIGITS
    if ones_expected is not None and _close(got, ones_expected):
        return ("backward가 grad_output을 무시합니다. 연쇄 법칙에 따라 상류 기울기를 곱해야 합니다",
                "backward ignores grad_output: by the chain rule, multiply by the upstream gradient")
    if _close(got, swapped):
        return ("두 입력의 기울기가 뒤바뀌었습니다. 각 입력의 기울기는 상류 기울기 × *다른* 입력입니다",
                "swapped operands: each input's gradient is the upstream gradient times the *other* input")
    if _close(got, -expected):
        return "기울기의 부호가 반대입니다", "sign error: the gradient has the wrong sign"
    factor = _factor(got, expected)
    if factor is not None:
        n, big = max(factor, 1 / abs(factor)), factor > 1
        if abs(n - round(n)) < 1e-3:
            return (f"기울기가 {round(n)}배 {'큽니다' if big else '작습니다'}. 국소적 미분의 상수(x²의 2 같은)나 "
                    "배치 크기 N으로 나누기를 빠뜨렸거나 두 번 곱했나요?",
                    f"the gradient is {round(n)} times too {'large' if big else 'small'}: a constant of the "
                    "local derivative (the 2 of x²) or a division by the batch size N missing or applied twice?")
        return f"기울기가 {factor:.3g}배만큼 다릅니다", f"the gradient is off by a factor {factor:.3g}"
    return "기울기의 값이 틀렸습니다", "wrong gradient values"


# --- checking a Function ------------------------------------------------------------------------

def _upstream(shape, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator, dtype=torch.float64) * 2 + 0.5


def _leaves(inputs):
    """Fresh copies: differentiable inputs require grad, the others (labels) stay constants."""
    return [x.detach().clone().requires_grad_(x.requires_grad) for x in inputs]


def _reference_grads(reference, inputs, upstream):
    leaves = _leaves(inputs)
    wrt = [x for x in leaves if x.requires_grad]
    grads = iter(torch.autograd.grad(reference(*leaves), wrt, upstream, allow_unused=True))
    return [(next(grads) if x.requires_grad else None) for x in leaves]


def _fail(name, korean, english, formula="", cause=None):
    raise GradientMistake(name, korean, english, formula) from cause


def _call_backward(function, node, upstream, name, formula):
    """The raw gradients the student's backward returns (no engine: no summing, no casting)."""
    try:
        raw = function.backward(node, upstream)
    except NotImplementedError:
        _fail(name, "backward를 아직 구현하지 않았습니다", "backward is not implemented yet")
    except Exception as error:  # whatever the student's backward raised
        _fail(name, f"backward를 실행하다가 오류가 났습니다: {error!r}", f"backward raised an error: {error!r}", formula)
    return tuple(raw) if isinstance(raw, (tuple, list)) else (raw,)


def check_function(function, reference, inputs, name=None, formula="", seed=0, exact_shapes=False, gradcheck=True):
    """Check ``function`` (a ``torch.autograd.Function``) against ``reference`` (torch ops).

    inputs: float64 leaves, e.g. from ``random_inputs((3, 4), (4,))``; an input that does not
    require grad (labels) is a constant, and backward returns None for it. Checks, in order: the
    student's Function builds the node; the forward matches; backward (called directly, so the
    engine neither sums nor casts) returns one gradient per input, leaves ``grad_output``
    unchanged, and each gradient has the input's dtype, shape and torch's values for an upstream
    gradient that is not all ones; float64 ``gradcheck`` passes. Without ``exact_shapes`` a
    broadcast-shaped gradient is summed down as the engine does (Add of a row to a matrix); with
    it, a gradient must have its input's shape (Affine's bias: the sum over the batch is the skill).
    gradcheck=False where a finite difference means nothing: inputs at a kink (ReLU at exactly 0,
    where the gradient must be torch's convention, 0) or so large that f's rounding swamps it.
    """
    name = name or function.__name__
    leaves = _leaves(inputs)
    try:
        out = function.apply(*leaves)
    except NotImplementedError:
        _fail(name, "아직 구현하지 않았습니다", "not implemented yet")
    if not isinstance(getattr(out, "grad_fn", None), function._backward_cls):
        _fail(name, f"결과가 여러분의 {name} 노드로 만들어지지 않았습니다 ({name}.apply를 쓰세요)",
              f"the result was not produced by your {name} Function")
    expected_out = reference(*[x.detach() for x in inputs])
    if out.shape != expected_out.shape or not torch.allclose(out.detach(), expected_out):
        _fail(name, "순전파(forward)의 결과가 틀렸습니다", "forward returns wrong values")

    upstream = _upstream(out.shape, seed)
    kept = upstream.clone()
    raw = _call_backward(function, out.grad_fn, upstream, name, formula)
    while len(raw) > len(leaves) and raw[-1] is None:  # torch accepts extra trailing Nones
        raw = raw[:-1]
    if len(raw) != len(leaves):
        _fail(name, f"backward는 forward의 입력마다 하나씩, {len(leaves)}개의 기울기를 반환해야 "
              f"합니다. 지금은 {len(raw)}개를 반환합니다 (기울기가 없는 입력에는 None)",
              f"wrong number of returned gradients: forward takes {len(leaves)} inputs, backward "
              f"returned {len(raw)}; return one per input (None for an input such as labels)", formula)
    if any(torch.is_tensor(g) and g.is_floating_point() and not torch.isfinite(g).all() for g in raw):
        _fail(name, "기울기에 NaN이나 무한대가 있습니다. 큰 입력에서 exp가 넘치지 않나요? (소프트맥스는 최댓값을 빼고 "
              "계산합니다)", "the gradient holds NaN or infinity: does exp overflow for large inputs? (a softmax "
              "subtracts the maximum first)", formula)
    if not torch.equal(upstream, kept):
        _fail(name, "backward가 grad_output을 제자리에서(in place) 바꿉니다. 그러면 그래프의 다른 가지의 "
              "기울기가 오류 없이 틀어지고, gradcheck도 이를 잡지 못합니다 (grad_output.clone()을 바꾸거나 "
              "곱셈으로 새 텐서를 만드세요)",
              "backward changes grad_output in place: that silently corrupts other gradients in the "
              "graph, and gradcheck does not notice (clone it, or multiply instead)", formula)

    expected = _reference_grads(reference, inputs, upstream)
    ones = _reference_grads(reference, inputs, torch.ones_like(upstream))
    for i, (g, e, o) in enumerate(zip(raw, expected, ones)):
        if e is None:
            continue
        where = f"{name} (입력/input {i})"
        if g is None:
            _fail(where, "기울기 대신 None을 반환했습니다", "returned None instead of a gradient", formula)
        if not exact_shapes and torch.is_tensor(g) and g.shape != e.shape and g.dim() >= e.dim():
            g = g.sum_to_size(e.shape) if _broadcastable(e.shape, g.shape) else g
        others = [x for j, x in enumerate(expected) if j != i and x is not None and x.shape == e.shape]
        mistake = diagnose(g, e, o, others[0] if len(others) == 1 else None)
        if mistake:
            _fail(where, *mistake, formula)
    if gradcheck:
        _gradcheck(function, leaves, name, formula)


def _broadcastable(small, big):
    try:
        return torch.broadcast_shapes(small, big) == big
    except RuntimeError:
        return False


def _gradcheck(function, leaves, name, formula):
    wrt = [i for i, x in enumerate(leaves) if x.requires_grad]

    def apply(*differentiable):
        args = list(leaves)
        for i, x in zip(wrt, differentiable):
            args[i] = x
        return function.apply(*args)

    try:
        torch.autograd.gradcheck(apply, tuple(leaves[i] for i in wrt), eps=1e-6, atol=1e-5)
    except Exception as error:  # GradcheckError, or whatever the student's backward raised
        _fail(name, "수치 미분(gradcheck)과 맞지 않습니다",
              f"float64 gradcheck failed: {str(error).splitlines()[0]}", formula, error)


def graph_functions(output):
    """Names of the custom Functions whose nodes built ``output`` (e.g. {'Affine', 'ReLU'})."""
    seen, stack, names = set(), [output.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "_forward_cls"):
            names.add(node._forward_cls.__name__)
        stack.extend(child for child, _ in node.next_functions)
    return names


# --- checking a numerical gradient --------------------------------------------------------------

CENTRAL = "grad[i] = (f(x + h·e_i) - f(x - h·e_i)) / (2h),  h = 1e-4,  float64"


def check_numerical_gradient(numerical_gradient, seed=0):
    """Check a student's ``numerical_gradient(f, x)`` (central difference) on a float64 function."""
    name = "numerical_gradient"
    (x,) = random_inputs((3, 4), seed=seed)
    x = x.detach()
    weights = torch.linspace(-1.0, 2.0, 12, dtype=torch.float64).reshape(3, 4)
    f = lambda v: (weights * v ** 3).sum() / 3 + (v[0] * v[1]).sum()  # noqa: E731
    x_kept = x.clone()
    got = torch.as_tensor(numerical_gradient(f, x))
    if not torch.allclose(x, x_kept, rtol=1e-12, atol=0):  # x[i] += h; x[i] -= 2*h; x[i] += h rounds
        _fail(name, "x가 원래 값으로 돌아오지 않았습니다. x[i]를 바꿔 f를 계산한 뒤에는 되돌리세요",
              "x was not restored: put x[i] back after each evaluation", CENTRAL)
    expected = weights * x ** 2
    expected[0] += x[1]
    expected[1] += x[0]
    if got.shape == expected.shape and got.dtype == expected.dtype:
        if relative_error(got, expected) < 1e-7:
            _check_perturbs_x_itself(numerical_gradient, f, x, expected)
            return
        if relative_error(got, _forward_difference(f, x)) < 1e-9:
            _fail(name, "전방 차분 (f(x+h) - f(x)) / h를 썼습니다. 그 오차는 h에 비례하고, 책의 중심 차분은 h²에 "
                  "비례합니다",
                  "forward difference (f(x+h) - f(x)) / h: its error is O(h); the book's central "
                  "difference is O(h²)", CENTRAL)
    _fail(name, *(diagnose(got, expected) or ("중심 차분의 오차가 너무 큽니다",
                                              "not accurate enough for a float64 central difference")),
          CENTRAL)


def _check_perturbs_x_itself(numerical_gradient, f, x, expected):
    """f may read x itself and ignore its argument, as gradient_check's ``lambda _: net.loss(x, t)``
    does: then only a numerical gradient that changes x itself (not a copy) sees f change."""
    got = torch.as_tensor(numerical_gradient(lambda _: f(x), x))
    if got.shape != expected.shape or relative_error(got, expected) >= 1e-7:
        _fail("numerical_gradient", "x의 복사본을 바꾸나요? f가 인자를 쓰지 않고 x를 직접 읽으면(gradient_check의 "
              "lambda _: net.loss(x, t)처럼) 기울기가 0이 됩니다. x 자체를 바꾸고 되돌리세요",
              "does it perturb a copy of x? When f reads x itself and ignores its argument (as "
              "gradient_check's lambda _: net.loss(x, t) does), the gradient comes out 0: change x itself, "
              "then put it back", CENTRAL)


def _forward_difference(f, x, h=1e-4):
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        step = torch.zeros_like(x).reshape(-1)
        step[i] = h
        grad.reshape(-1)[i] = (f(x + step.reshape(x.shape)) - f(x)) / h
    return grad


# --- the graph exercises, graded on their own -----------------------------------------------------

_METHODS = ("forward", "setup_context", "backward", "vjp", "jvp")


@contextmanager
def behaving_as(function, reference):
    """While inside, the class ``function`` itself computes as ``reference`` (both Functions).

    The methods are swapped on the class object, so every way the student's code reaches it (the
    global name, ``mul = Mul.apply`` bound earlier, a subclass) builds nodes that run the reference;
    the node is still ``function``'s own (its ``_backward_cls``). Put back afterwards, even on error.
    """
    missing = object()
    saved = {name: function.__dict__.get(name, missing) for name in _METHODS}
    for name in _METHODS:
        if name in reference.__dict__:
            setattr(function, name, reference.__dict__[name])
        elif name in function.__dict__:
            delattr(function, name)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                if name in function.__dict__:
                    delattr(function, name)
            else:
                setattr(function, name, value)


def _nodes(returned, names):
    """The nodes a graph function returned, as a dict named like the reference's (tuple or dict)."""
    if isinstance(returned, dict):
        return returned
    returned = returned if isinstance(returned, (tuple, list)) else (returned,)
    return dict(zip(names, returned))


def _student_function(namespace, op, name):
    function = namespace.get(op)
    if not (isinstance(function, type) and issubclass(function, torch.autograd.Function)):
        _fail(name, f"{op} 클래스(torch.autograd.Function)가 정의되어 있지 않습니다. 위의 셀을 먼저 실행하세요",
              f"no {op} Function is defined: run the cells above first")
    return function


def check_graph(build, reference, values, namespace, references=None, upstream=1.0):
    """Grade a graph exercise on its own code: the nodes the student's ``build`` makes and wires.

    build: the student's function (``apple_shopping``), called with float64 leaves in the order of
    ``values`` ({name: number}); it returns its nodes as a tuple or a dict. reference: the book's
    graph in torch ops, same arguments, returning {node name: tensor} with the output last.
    namespace: the notebook's ``globals()``, where the student's ``Mul`` and ``Add`` classes are.
    Every returned node must be made by the student's class of the book's operation (``Mul.apply``,
    ``Add.apply``) and have the book's forward value. references ({"Mul": a Function, ...}, given by
    the grader's hidden tests): while ``build`` runs and its graph is differentiated, the student's
    classes compute as these (``behaving_as``), so the graph's gradients are graded without the
    student's own ``backward``s; every leaf and node must then get the book's gradient for
    ``upstream`` fed into the output. Without references only the nodes and their values are checked.
    """
    name = build.__name__
    leaves = [torch.tensor([float(v)], dtype=torch.float64, requires_grad=True) for v in values.values()]
    ref_leaves = [x.detach().clone().requires_grad_() for x in leaves]
    expected = reference(*ref_leaves)
    ops = {node: type(want.grad_fn).__name__.split("Backward")[0] for node, want in expected.items()}
    functions = {op: _student_function(namespace, op, name) for op in sorted(set(ops.values()))}
    with contextlib.ExitStack() as swapped:
        for op, function in functions.items():
            if references and op in references:
                swapped.enter_context(behaving_as(function, references[op]))
        try:
            got = _nodes(build(*leaves), list(expected))
        except NotImplementedError:
            _fail(name, "아직 구현하지 않았습니다", "not implemented yet")
        for node, want in expected.items():
            tensor, op = got.get(node), ops[node]
            if tensor is None:
                _fail(name, f"{node} 노드를 반환하지 않았습니다", f"the {node} node was not returned")
            if not isinstance(getattr(tensor, "grad_fn", None), functions[op]._backward_cls):
                _fail(name, f"{node} 노드는 여러분의 {op} 노드({op}.apply)로 만드세요",
                      f"build the {node} node with your {op} node ({op}.apply)")
            if not torch.allclose(tensor.detach(), want.detach()):
                _fail(name, f"{node}의 순전파 값이 {tensor.item():.4g}이지만 책의 그래프에서는 {want.item():.4g}입니다. "
                      "입력을 맞게 연결했나요?",
                      f"{node}'s forward value is {tensor.item():.4g}, the book's graph gives {want.item():.4g}: "
                      "are the inputs wired right?")
        if references:
            _check_graph_gradients(name, got, expected, leaves, ref_leaves, list(values), upstream)


def _check_graph_gradients(name, got, expected, leaves, ref_leaves, leaf_names, upstream):
    g = torch.full((1,), float(upstream), dtype=torch.float64)
    output = list(expected)[-1]
    try:
        grads = torch.autograd.grad(got[output], [*leaves, *(got[n] for n in expected)], g, allow_unused=True)
    except RuntimeError as error:  # a node cut from the graph (detach, .data, a new tensor)
        _fail(name, "출력에서 입력까지 역전파가 이어지지 않습니다 (detach()나 .data로 그래프를 끊었나요?)",
              f"backpropagation does not reach every input from the output: {str(error).splitlines()[0]}")
    want = torch.autograd.grad(expected[output], [*ref_leaves, *expected.values()], g)
    for node, mine, book in zip([*leaf_names, *expected], grads, want):
        if mine is None or not torch.allclose(mine, book):
            korean, english = ("없지만", "none") if mine is None else (f"{mine.item():.4g}이지만", f"{mine.item():.4g}")
            _fail(name, f"{node}의 기울기가 {korean} 책의 그래프에서는 {book.item():.4g}입니다. 이 검사는 "
                  "참조 Mul과 Add를 쓰므로, 그래프의 연결을 확인하세요",
                  f"{node}'s gradient is {english}, the book's graph gives {book.item():.4g}; this check "
                  "uses reference Mul and Add nodes, so look at how the graph is wired")


def show_book_numbers(build, values, book):
    """Print the gradients the student's own nodes give beside the book's; never raises.

    build: called with float32 leaves in the order of ``values`` ({name: number}); it returns its
    nodes (the last one the output), as a tuple or a dict (then the named nodes are shown too).
    book: {leaf or node name: the book's gradient}.
    """
    leaves = {k: torch.tensor([float(v)], requires_grad=True) for k, v in values.items()}
    try:
        returned = build(*leaves.values())
        nodes = returned if isinstance(returned, dict) else {}
        output = list(returned.values())[-1] if isinstance(returned, dict) else returned[-1]
        tensors = {**leaves, **nodes}
        shown = [k for k in book if k in tensors]
        grads = dict(zip(shown, torch.autograd.grad(output, [tensors[k] for k in shown], torch.ones(1))))
    except Exception as error:  # the student's own nodes: show what happened, grade nothing here
        print(f"여러분의 노드로는 기울기를 계산하지 못했습니다 / your own nodes could not compute the "
              f"gradients: {error!r}")
        return
    wrong = 0
    for k in shown:
        ok = abs(grads[k].item() - book[k]) <= 1e-3 * max(1.0, abs(book[k]))
        wrong += not ok
        print(f"{k:>15s}.grad = {grads[k].item():10.4f}   책 / book: {book[k]:<8g} {'✓' if ok else '✗'}")
    if wrong:
        print("여러분의 Mul이나 Add의 backward가 책과 다른 기울기를 냅니다 (그 연습의 점수만 깎입니다). "
              "아래 검사는 참조 노드로 그래프만 채점합니다.\n"
              "Your own Mul or Add backward gives other gradients than the book's (only that exercise "
              "loses points); the check below grades the graph alone, with reference nodes.")


# --- a progress report ---------------------------------------------------------------------------

def report_progress(checks):
    """Run every check (name -> callable), print one pass/fail line each, never stop early."""
    passed = 0
    for name, check in checks.items():
        try:
            check()
        except NameError as error:
            line = ("아직 실행하지 않은 셀이 있습니다. 위의 셀을 먼저 실행하세요 / "
                    f"not run yet ({error}): run the cells above first")
        except NotImplementedError:
            line = "아직 구현하지 않았습니다 / not implemented yet"
        except Exception as error:  # any failed check: show its message, go on
            line = str(error).strip() or type(error).__name__
        else:
            passed += 1
            print(f"[통과 PASS] {name}")
            continue
        print(f"[실패 FAIL] {name}\n    " + line.replace("\n", "\n    "))
    print(f"--> {passed}/{len(checks)} 통과 / passed")
