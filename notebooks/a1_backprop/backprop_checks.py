"""Gradient checks for the course's exercises, with messages that name the mistake.

Every check compares a student's ``torch.autograd.Function`` with PyTorch's own autograd on the
same inputs (the oracle), with an upstream gradient that is not all ones, and explains a failure
in Korean and English. The notebooks' visible and hidden tests call these functions; the
instructor's grader verifies the same gradients again outside the student's kernel.
"""
import torch

__all__ = ["GradientMistake", "check_function", "diagnose", "random_inputs"]


class GradientMistake(AssertionError):
    """A wrong gradient, with a message for the student in Korean and English."""

    def __init__(self, name, korean, english, formula=""):
        hint = f"\n  올바른 식 / expected: {formula}" if formula else ""
        super().__init__(f"{name}: {korean}\n{name}: {english}{hint}")


def random_inputs(*shapes, seed=1234, dtype=torch.float64):
    """Distinct random leaves that require grad, one per shape (no two equal values)."""
    generator = torch.Generator().manual_seed(seed)
    leaves = []
    for shape in shapes:
        values = torch.rand(shape, generator=generator, dtype=dtype) * 3 + 0.5
        signs = torch.where(torch.rand(shape, generator=generator) < 0.3, -1.0, 1.0)
        leaves.append((values * signs.to(dtype)).requires_grad_())
    return leaves


def diagnose(got, expected, ones_expected, swapped=None):
    """Name the misconception that turns ``expected`` into ``got``, or return None.

    ``ones_expected`` is what the gradient would be with an all-ones upstream gradient (what a
    backward that ignores ``grad_output`` returns); ``swapped`` is the other operand's expected
    gradient (what a backward that swaps its operands returns).
    """
    def close(a, b):
        return b is not None and a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-7)

    if got.shape != expected.shape:
        return ("gradient의 shape이 입력과 다릅니다 (배치에 대해 합하지 않았나요?)",
                f"gradient shape {tuple(got.shape)} differs from the input's "
                f"{tuple(expected.shape)} (missing a sum over the batch?)")
    if close(got, ones_expected) and not close(got, expected):
        return ("backward가 grad_output을 무시합니다: 연쇄 법칙에 따라 upstream gradient를 곱해야 합니다",
                "backward ignores grad_output: by the chain rule, multiply by the upstream gradient")
    if close(got, swapped) and not close(got, expected):
        return ("두 입력의 gradient가 뒤바뀌었습니다", "swapped operands: each input's gradient "
                "is the upstream gradient times the *other* input")
    if close(got, -expected):
        return "gradient의 부호가 반대입니다", "sign error: the gradient has the wrong sign"
    if not close(got, expected):
        return "gradient 값이 틀렸습니다", "wrong gradient values"
    return None


def _upstream(shape, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator, dtype=torch.float64) * 2 + 0.5


def _grads(fn, inputs, upstream):
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    out = fn(*leaves)
    grads = torch.autograd.grad(out, leaves, upstream, allow_unused=True)
    return out, [torch.zeros_like(x) if g is None else g for g, x in zip(grads, leaves)]


def check_function(function, reference, inputs, name=None, formula="", seed=0):
    """Check ``function`` (a ``torch.autograd.Function``) against ``reference`` (torch ops).

    inputs: float64 leaves, e.g. from ``random_inputs((3, 4), (4,))``; broadcasting allowed.
    Checks, in order: the student's Function builds the node; the forward matches; backward
    returns one gradient per input, leaves ``grad_output`` unchanged, and equals torch's
    gradient for a non-ones upstream gradient; float64 ``gradcheck`` passes.
    """
    name = name or function.__name__
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    try:
        out = function.apply(*leaves)
    except NotImplementedError:
        raise GradientMistake(name, "아직 구현하지 않았습니다", "not implemented yet") from None
    if not isinstance(getattr(out, "grad_fn", None), function._backward_cls):
        raise GradientMistake(name, f"결과가 {name}의 backward 노드로 만들어지지 않았습니다",
                              f"the result was not produced by your {name} Function")
    expected_out = reference(*[x.detach() for x in inputs])
    if out.shape != expected_out.shape or not torch.allclose(out.detach(), expected_out):
        raise GradientMistake(name, "forward 결과가 틀렸습니다", "forward returns wrong values")

    upstream = _upstream(out.shape, seed)
    kept = upstream.clone()
    try:
        got = torch.autograd.grad(out, leaves, upstream, allow_unused=True)
    except NotImplementedError:
        raise GradientMistake(name, "backward를 아직 구현하지 않았습니다",
                              "backward is not implemented yet") from None
    except RuntimeError as error:
        if "incorrect number of gradients" in str(error):
            raise GradientMistake(name, f"backward는 입력마다 하나씩, {len(leaves)}개의 gradient를 "
                                  "돌려주어야 합니다", f"backward must return one gradient per input "
                                  f"({len(leaves)}): {error}") from None
        raise GradientMistake(name, f"backward 실행 중 오류: {error}",
                              f"backward raised an error: {error}") from None
    if not torch.equal(upstream, kept):
        raise GradientMistake(name, "backward가 grad_output을 제자리에서(in place) 바꿉니다: "
                              "그래프의 다른 gradient가 망가집니다 (복사한 뒤 바꾸세요)",
                              "backward modifies grad_output in place, which corrupts other "
                              "gradients in the graph (clone it first)", formula)
    _, expected = _grads(reference, inputs, upstream)
    _, ones_expected = _grads(reference, inputs, torch.ones_like(upstream))
    for i, (g, e, o) in enumerate(zip(got, expected, ones_expected)):
        g = torch.zeros_like(e) if g is None else g
        other = expected[1 - i] if len(expected) == 2 and expected[1 - i].shape == e.shape else None
        mistake = diagnose(g, e, o, other)
        if mistake:
            raise GradientMistake(f"{name} (입력/input {i})", *mistake, formula)
    try:
        torch.autograd.gradcheck(function.apply, tuple(leaves), eps=1e-6, atol=1e-5)
    except Exception as error:  # GradcheckError, or whatever the student's backward raised
        raise GradientMistake(name, "수치 미분(gradcheck)과 맞지 않습니다",
                              f"float64 gradcheck failed: {str(error).splitlines()[0]}",
                              formula) from None
