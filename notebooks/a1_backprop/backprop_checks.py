"""Gradient checks for the course's exercises, with messages that name the mistake.

Every check compares a student's ``torch.autograd.Function`` with PyTorch's own autograd on the
same inputs (the oracle), with an upstream gradient that is not all ones, and explains a failure
in Korean and English, with the formula the student should have used. The notebooks' visible and
hidden tests and their "check my progress" cells call these functions.

Mistakes recognised from the numbers (see ``diagnose``): ``grad_output`` ignored, operands
swapped, a sign error, a transposed gradient, a missing sum over the batch, a factor such as the
batch size, ``grad_output`` changed in place, the wrong number of returned gradients, float32
where float64 was needed, and a forward instead of a central difference.
"""
import torch

__all__ = ["GradientMistake", "check_function", "check_numerical_gradient", "check_book_numbers",
           "diagnose", "graph_functions", "random_inputs", "relative_error", "report_progress"]


class GradientMistake(AssertionError):
    """A wrong gradient, with a message for the student in Korean and English."""

    def __init__(self, name, korean, english, formula=""):
        hint = f"\n  올바른 식 / expected: {formula}" if formula else ""
        super().__init__(f"{name}: {korean}\n{name}: {english}{hint}")


def random_inputs(*shapes, seed=1234, dtype=torch.float64):
    """Distinct random leaves that require grad, one per shape (no two equal values, none near 0)."""
    generator = torch.Generator().manual_seed(seed)
    leaves = []
    for shape in shapes:
        values = torch.rand(shape, generator=generator, dtype=dtype) * 3 + 0.5
        signs = torch.where(torch.rand(shape, generator=generator) < 0.3, -1.0, 1.0)
        leaves.append((values * signs.to(dtype)).requires_grad_())
    return leaves


def relative_error(a, b):
    """max |a - b| / max(|a| + |b|), the CS231n measure: about 1e-8 or less for a right gradient."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return ((a - b).abs().max() / (a.abs() + b.abs()).max().clamp_min(1e-12)).item()


# --- naming the mistake -------------------------------------------------------------------------

FLOAT32 = ("float64가 필요한 곳에서 float32를 썼습니다: torch.zeros(shape)나 torch.tensor(...)는 기본이 "
           "float32입니다 (torch.zeros_like(x) 또는 dtype=x.dtype를 쓰세요)",
           "float32 where float64 was needed: torch.zeros(shape) and torch.tensor(...) default to "
           "float32, which keeps only ~7 digits (use torch.zeros_like(x) or dtype=x.dtype)")


def _close(a, b):
    return b is not None and a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-7)


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
            return ("배치에 대해 합하지 않았습니다: 편향(bias)은 모든 행에 더해지므로 그 gradient는 "
                    "grad_output을 배치 축(dim=0)으로 합한 것입니다",
                    f"missing sum over the batch: the gradient has shape {tuple(got.shape)}, the input "
                    f"{tuple(expected.shape)}; a bias is added to every row, so its gradient is "
                    "grad_output summed over the batch (dim=0)")
        if got.dim() == 2 and _close(got.T, expected):
            return ("gradient가 전치되어 있습니다: 입력과 같은 shape이어야 합니다",
                    f"transposed gradient: shape {tuple(got.shape)}, but it must have the input's "
                    f"shape {tuple(expected.shape)}")
        return ("gradient의 shape이 입력과 다릅니다",
                f"gradient shape {tuple(got.shape)} differs from the input's {tuple(expected.shape)}")
    if _close(got, expected):
        return None
    if ones_expected is not None and _close(got, ones_expected):
        return ("backward가 grad_output을 무시합니다: 연쇄 법칙에 따라 upstream gradient를 곱해야 합니다",
                "backward ignores grad_output: by the chain rule, multiply by the upstream gradient")
    if _close(got, swapped):
        return ("두 입력의 gradient가 뒤바뀌었습니다: 각 입력의 gradient는 upstream gradient × *다른* 입력입니다",
                "swapped operands: each input's gradient is the upstream gradient times the *other* input")
    if _close(got, -expected):
        return "gradient의 부호가 반대입니다", "sign error: the gradient has the wrong sign"
    factor = _factor(got, expected)
    if factor is not None:
        n, big = max(factor, 1 / abs(factor)), factor > 1
        if abs(n - round(n)) < 1e-3:
            return (f"gradient가 {round(n)}배 {'큽니다' if big else '작습니다'}: 배치 크기 N(또는 2)으로 "
                    "나누는 것을 빠뜨렸거나 두 번 했나요?",
                    f"the gradient is {round(n)} times too {'large' if big else 'small'}: a missing "
                    "(or extra) division by the batch size N (or by 2)?")
        return f"gradient가 상수배({factor:.3g}) 차이가 납니다", f"the gradient is off by a factor {factor:.3g}"
    return "gradient 값이 틀렸습니다", "wrong gradient values"


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
        _fail(name, f"backward 실행 중 오류: {error!r}", f"backward raised an error: {error!r}", formula)
    return tuple(raw) if isinstance(raw, (tuple, list)) else (raw,)


def check_function(function, reference, inputs, name=None, formula="", seed=0, exact_shapes=False):
    """Check ``function`` (a ``torch.autograd.Function``) against ``reference`` (torch ops).

    inputs: float64 leaves, e.g. from ``random_inputs((3, 4), (4,))``; an input that does not
    require grad (labels) is a constant, and backward returns None for it. Checks, in order: the
    student's Function builds the node; the forward matches; backward (called directly, so the
    engine neither sums nor casts) returns one gradient per input, leaves ``grad_output``
    unchanged, and each gradient has the input's dtype, shape and torch's values for an upstream
    gradient that is not all ones; float64 ``gradcheck`` passes. Without ``exact_shapes`` a
    broadcast-shaped gradient is summed down as the engine does (Add of a row to a matrix); with
    it, a gradient must have its input's shape (Affine's bias: the sum over the batch is the skill).
    """
    name = name or function.__name__
    leaves = _leaves(inputs)
    try:
        out = function.apply(*leaves)
    except NotImplementedError:
        _fail(name, "아직 구현하지 않았습니다", "not implemented yet")
    if not isinstance(getattr(out, "grad_fn", None), function._backward_cls):
        _fail(name, f"결과가 {name}의 backward 노드로 만들어지지 않았습니다",
              f"the result was not produced by your {name} Function")
    expected_out = reference(*[x.detach() for x in inputs])
    if out.shape != expected_out.shape or not torch.allclose(out.detach(), expected_out):
        _fail(name, "forward 결과가 틀렸습니다", "forward returns wrong values")

    upstream = _upstream(out.shape, seed)
    kept = upstream.clone()
    raw = _call_backward(function, out.grad_fn, upstream, name, formula)
    if len(raw) != len(leaves):
        _fail(name, f"backward는 forward의 입력마다 하나씩, {len(leaves)}개의 gradient를 돌려주어야 "
              f"합니다 ({len(raw)}개를 돌려줌; gradient가 없는 입력에는 None)",
              f"wrong number of returned gradients: forward takes {len(leaves)} inputs, backward "
              f"returned {len(raw)}; return one per input (None for an input such as labels)", formula)
    if not torch.equal(upstream, kept):
        _fail(name, "backward가 grad_output을 제자리에서(in place) 바꿉니다: 그래프의 다른 gradient가 "
              "망가지고 gradcheck로도 잡히지 않습니다 (grad_output.clone()을 바꾸거나 곱셈으로 쓰세요)",
              "backward changes grad_output in place: that silently corrupts other gradients in the "
              "graph, and gradcheck does not notice (clone it, or multiply instead)", formula)

    expected = _reference_grads(reference, inputs, upstream)
    ones = _reference_grads(reference, inputs, torch.ones_like(upstream))
    for i, (g, e, o) in enumerate(zip(raw, expected, ones)):
        if e is None:
            continue
        where = f"{name} (입력/input {i})"
        if g is None:
            _fail(where, "gradient 대신 None을 돌려주었습니다", "returned None instead of a gradient", formula)
        if not exact_shapes and torch.is_tensor(g) and g.shape != e.shape and g.dim() >= e.dim():
            g = g.sum_to_size(e.shape) if _broadcastable(e.shape, g.shape) else g
        others = [x for j, x in enumerate(expected) if j != i and x is not None and x.shape == e.shape]
        mistake = diagnose(g, e, o, others[0] if len(others) == 1 else None)
        if mistake:
            _fail(where, *mistake, formula)
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
    if not torch.equal(x, x_kept):
        _fail(name, "x가 원래 값으로 돌아오지 않았습니다: x[i]를 바꾼 뒤 되돌리세요",
              "x was not restored: put x[i] back after each evaluation", CENTRAL)
    expected = weights * x ** 2
    expected[0] += x[1]
    expected[1] += x[0]
    if got.shape == expected.shape and got.dtype == expected.dtype:
        if relative_error(got, expected) < 1e-7:
            return
        if relative_error(got, _forward_difference(f, x)) < 1e-9:
            _fail(name, "전방 차분 (f(x+h) - f(x)) / h 을 썼습니다: 오차가 h에 비례합니다 (중심 차분은 h²)",
                  "forward difference (f(x+h) - f(x)) / h: its error is O(h); the book's central "
                  "difference is O(h²)", CENTRAL)
    _fail(name, *(diagnose(got, expected) or ("중심 차분의 오차가 너무 큽니다",
                                              "not accurate enough for a float64 central difference")),
          CENTRAL)


def _forward_difference(f, x, h=1e-4):
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        step = torch.zeros_like(x).reshape(-1)
        step[i] = h
        grad.reshape(-1)[i] = (f(x + step.reshape(x.shape)) - f(x)) / h
    return grad


# --- the book's numbers, and a progress report ---------------------------------------------------

def check_book_numbers(build, values, book, upstream=1.0):
    """Build a graph from float32 leaves named as in ``values``; compare their grads with ``book``.

    build: called with the leaves as keyword arguments, returns the output tensor.
    """
    leaves = {k: torch.tensor([float(v)], requires_grad=True) for k, v in values.items()}
    build(**leaves).backward(torch.full((1,), upstream))
    for name, expected in book.items():
        got = leaves[name].grad
        if got is None or abs(got.item() - expected) > 1e-3 * max(1.0, abs(expected)):
            value = "None" if got is None else f"{got.item():.4f}"
            _fail(f"{name}.grad", f"{value}, 책 / book: {expected} (곱셈 노드가 grad_output을 곱하나요?)",
                  f"{value}, book: {expected} (does each multiply node multiply by grad_output?)")


def report_progress(checks):
    """Run every check (name -> callable), print one pass/fail line each, never stop early."""
    passed = 0
    for name, check in checks.items():
        try:
            check()
        except NameError as error:
            line = (f"아직 실행하지 않았습니다 / not run yet ({error}): 위의 셀을 먼저 실행하세요 / "
                    "run the cells above first")
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
