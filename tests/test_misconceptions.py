"""Each mistake a student makes in a backward is named, in Korean and English, with the formula.

A deliberately wrong Function per mistake goes through the same checks as the hidden tests.
"""
import json
import sys

import pytest
import torch
import torch.nn.functional as F

from grader.course import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "solutions" / "a1_backprop"))
from backprop_checks import (CASES, LARGE_LOGITS, GradientMistake, behaving_as, check_function,  # noqa: E402
                             check_graph, check_numerical_gradient, random_inputs, report_progress,
                             show_book_numbers)


def function(name, forward, backward, save=lambda ctx, *xs: ctx.save_for_backward(*xs)):
    """A torch.autograd.Function named ``name`` from a forward and a backward(ctx, g, *saved)."""
    def fwd(ctx, *xs):
        out = forward(*xs)
        save(ctx, *xs, out)
        return out

    def bwd(ctx, g):
        return backward(ctx, g, *ctx.saved_tensors)
    return type(name, (torch.autograd.Function,), {"forward": staticmethod(fwd), "backward": staticmethod(bwd)})


def mul(backward):
    return function("Mul", torch.mul, lambda ctx, g, x, y, out: backward(g, x, y))


def relu(backward):
    return function("ReLU", lambda x: x.clamp(min=0), lambda ctx, g, x, out: backward(g, x > 0))


def affine(backward):
    return function("Affine", lambda x, W, b: x @ W + b, lambda ctx, g, x, W, b, out: backward(g, x, W))


def softmax_with_loss(backward):
    def forward(x, t):
        one_hot = F.one_hot(t, x.shape[1]).to(x.dtype) if t.dim() == 1 else t
        return -(one_hot * torch.log_softmax(x, dim=1)).sum() / x.shape[0]

    def save(ctx, x, t, out):
        one_hot = F.one_hot(t, x.shape[1]).to(x.dtype) if t.dim() == 1 else t
        ctx.save_for_backward(torch.softmax(x, dim=1), one_hot)
    return function("SoftmaxWithLoss", forward, lambda ctx, g, y, t: backward(g, y, t), save)


def sigmoid(backward):
    return function("Sigmoid", torch.sigmoid, lambda ctx, g, x, out: backward(g, out))


def book_relu_backward(g, mask):
    g[~mask] = 0  # the book's `dout[mask] = 0`
    return g


MUL_FORMULA = "grad_x = grad_output * y, grad_y = grad_output * x"
AFFINE_FORMULA = "dx = g @ W.T, dW = x.T @ g, db = g.sum(dim=0)"
SOFTMAX_FORMULA = "dx = grad_output * (y - t) / N, None"
SIGMOID_FORMULA = "dx = grad_output * y * (1 - y)"


def mul_case(backward):
    return mul(backward), torch.mul, random_inputs((4,), (4,), seed=1), MUL_FORMULA


def affine_case(backward):
    return affine(backward), lambda x, W, b: x @ W + b, random_inputs((5, 3), (3, 2), (2,), seed=2), AFFINE_FORMULA


STRICT = {"missing sum over the batch", "transposed"}


def softmax_case(backward, one_hot=False):
    x, = random_inputs((6, 4), seed=3)
    t = torch.tensor([0, 3, 1, 2, 3, 0])
    t = F.one_hot(t, 4).double() if one_hot else t
    return softmax_with_loss(backward), F.cross_entropy, [x, t], SOFTMAX_FORMULA


MISTAKES = {
    # name: (Function, reference, inputs, formula), words every message must contain
    "ignores grad_output": (mul_case(lambda g, x, y: (y, x)), ["grad_output을 무시", "ignores grad_output"]),
    "swapped operands": (mul_case(lambda g, x, y: (g * x, g * y)), ["뒤바뀌었", "swapped operands"]),
    "sign error": ((sigmoid(lambda g, y: -g * y * (1 - y)), torch.sigmoid, random_inputs((3, 4), seed=4),
                    SIGMOID_FORMULA), ["부호", "sign error"]),
    "missing sum over the batch": (affine_case(lambda g, x, W: (g @ W.T, x.T @ g, g)),
                                   ["배치에 대해 합하지", "missing sum over the batch"]),
    "transposed": (affine_case(lambda g, x, W: (g @ W.T, g.T @ x, g.sum(0))), ["전치", "transposed"]),
    "grad_output in place": ((relu(book_relu_backward), torch.relu, random_inputs((4, 5), seed=5), "dx = g * mask"),
                             ["제자리", "in place"]),
    "wrong number of gradients": (softmax_case(lambda g, y, t: g * (y - t) / y.shape[0]),
                                  ["2개의 기울기", "wrong number of returned gradients"]),
    "ignores grad_output (softmax, the book's backward)": (
        softmax_case(lambda g, y, t: ((y - t) / y.shape[0], None)), ["grad_output을 무시", "ignores grad_output"]),
    "missing division by the batch size": (
        softmax_case(lambda g, y, t: (g * (y - t), None), one_hot=True), ["6배", "6 times too large"]),
    "float32 where float64 was needed": (
        (sigmoid(lambda g, y: (g * y * (1 - y)).float()), torch.sigmoid, random_inputs((3,), seed=6),
         SIGMOID_FORMULA), ["float32", "float64 was needed"]),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_mistake_is_named_in_both_languages_with_the_formula(mistake):
    (fn, reference, inputs, formula), words = MISTAKES[mistake]
    with pytest.raises(GradientMistake) as caught:
        check_function(fn, reference, inputs, formula=formula, exact_shapes=mistake in STRICT)
    message = str(caught.value)
    for word in words + [formula]:
        assert word in message, message


@pytest.mark.parametrize("case", [
    mul_case(lambda g, x, y: (g * y, g * x)),
    affine_case(lambda g, x, W: (g @ W.T, x.T @ g, g.sum(0))),
    softmax_case(lambda g, y, t: (g * (y - t) / y.shape[0], None)),
    softmax_case(lambda g, y, t: (g * (y - t) / y.shape[0], None), one_hot=True),
    (relu(lambda g, mask: g * mask), torch.relu, random_inputs((4, 5), seed=5), ""),
], ids=["mul", "affine", "softmax-labels", "softmax-one-hot", "relu"])
def test_right_backward_passes(case):
    fn, reference, inputs, formula = case
    check_function(fn, reference, inputs, formula=formula)


def test_broadcast_gradient_is_summed_down_unless_shapes_must_be_exact():
    """Add's backward may return grad_output for a broadcast row (the engine sums it); a bias may not."""
    add = function("Add", torch.add, lambda ctx, g, x, y, out: (g, g))
    inputs = random_inputs((3, 4), (4,), seed=8)
    check_function(add, torch.add, inputs)
    with pytest.raises(GradientMistake, match="missing sum over the batch"):
        check_function(add, torch.add, inputs, exact_shapes=True)


def test_book_relu_in_place_really_corrupts_other_gradients():
    """Why the in-place test exists: gradcheck passes, yet x's other branch loses its gradient."""
    book_relu = relu(book_relu_backward)
    x = torch.tensor([-1.0, 2.0, -3.0, 4.0], requires_grad=True)
    (book_relu.apply(x) + x).backward(torch.ones(4))
    assert x.grad.tolist() == [0.0, 2.0, 0.0, 2.0]  # right: [1, 2, 1, 2]
    leaf, = random_inputs((4,), seed=7)
    assert torch.autograd.gradcheck(book_relu.apply, (leaf,))


def test_blank_backward_says_not_implemented():
    def blank(*args):
        raise NotImplementedError()
    (fn, reference, inputs, formula) = mul_case(blank)
    with pytest.raises(GradientMistake, match="not implemented"):
        check_function(fn, reference, inputs)


def central(f, x, h=1e-4):
    grad = torch.zeros_like(x)
    flat, out = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        keep = flat[i].item()
        flat[i] = keep + h
        plus = f(x)
        flat[i] = keep - h
        minus = f(x)
        flat[i] = keep
        out[i] = (plus - minus) / (2 * h)
    return grad


def float32_grad(f, x, h=1e-4):
    grad = central(f, x, h)
    return torch.zeros(x.shape).copy_(grad)  # torch.zeros(shape) is float32


def forward_difference(f, x, h=1e-4):
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        step = torch.zeros(x.numel(), dtype=x.dtype)
        step[i] = h
        grad.view(-1)[i] = (f(x + step.view(x.shape)) - f(x)) / h
    return grad


def not_restored(f, x, h=1e-4):
    grad = central(f, x, h)
    x.view(-1)[0] += h
    return grad


@pytest.mark.parametrize("numerical_gradient, words", [
    (float32_grad, ["float32", "float64 was needed"]),
    (forward_difference, ["전방 차분", "forward difference"]),
    (lambda f, x: central(f, x) * 2, ["2배", "2 times too large"]),
    (not_restored, ["되돌리세요", "not restored"]),
], ids=["float32", "forward-difference", "forgot-2h", "x-not-restored"])
def test_numerical_gradient_mistakes_are_named(numerical_gradient, words):
    with pytest.raises(GradientMistake) as caught:
        check_numerical_gradient(numerical_gradient)
    for word in words + ["(2h)"]:
        assert word in str(caught.value)


def test_central_difference_passes():
    check_numerical_gradient(central)


SOURCE_MUL = mul(lambda g, x, y: (y, x))  # the source notebook's Mul: ignores grad_output
RIGHT_MUL = mul(lambda g, x, y: (g * y, g * x))
RIGHT_ADD = function("Add", torch.add, lambda ctx, g, x, y, out: (g, g))
APPLE = {"apple": 100, "num": 2, "ctax": 1.1}


def book_apple(apple, num, ctax):
    price = apple * num
    return {"price": price, "result": price * ctax}


def book_fruit(apple, num_apple, tangerine, num_tangerine, ctax):
    apple_price, tangerine_price = apple * num_apple, tangerine * num_tangerine
    price = apple_price + tangerine_price
    return {"apple_price": apple_price, "tangerine_price": tangerine_price, "price": price, "result": price * ctax}


APPLE_BY_NAME = ("def apple_shopping(apple, num, ctax):\n"
                 "    price = Mul.apply(apple, num)\n"
                 "    return price, Mul.apply({wiring}, ctax)\n")
# correct variants: an alias bound before grading (the name Mul is never looked up while grading)
APPLE_BY_ALIAS = ("mul = Mul.apply\n"
                  "def apple_shopping(apple, num, ctax):\n"
                  "    price = mul(apple, num)\n"
                  "    return price, mul({wiring}, ctax)\n")
APPLE_BY_DEFAULT = ("def apple_shopping(apple, num, ctax, times=Mul.apply):\n"
                    "    price = times(apple, num)\n"
                    "    return price, times({wiring}, ctax)\n")
FRUIT = ("def fruit_shopping(apple, num_apple, tangerine, num_tangerine, ctax):\n"
         "    nodes = {'apple_price': Mul.apply(apple, num_apple), 'tangerine_price': Mul.apply(tangerine, num_tangerine)}\n"
         "    nodes['price'] = Add.apply(nodes['apple_price'], nodes['tangerine_price'])\n"
         "    return {**nodes, 'result': Mul.apply(nodes['price'], ctax)}\n")


def notebook(mul_class, add_class=RIGHT_ADD, wiring="price", apple=APPLE_BY_NAME):
    """A student's notebook globals: their Mul and Add, and graph functions that use them."""
    namespace = {"Mul": mul_class, "Add": add_class}
    exec(apple.format(wiring=wiring) + FRUIT, namespace)
    return namespace


def reference_mul():
    return function("ReferenceMul", torch.mul, lambda ctx, g, x, y, out: (g * y, g * x))


def references():
    return {"Mul": reference_mul(), "Add": function("ReferenceAdd", torch.add, lambda ctx, g, x, y, out: (g, g))}


def new_style_mul(backward):
    """A Mul written with torch 2's separate setup_context (forward without ctx)."""
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)
    return type("Mul", (torch.autograd.Function,), {
        "forward": staticmethod(lambda x, y: x * y), "setup_context": staticmethod(setup_context),
        "backward": staticmethod(lambda ctx, g: backward(g, *ctx.saved_tensors))})


@pytest.mark.parametrize("mul_class", [RIGHT_MUL, SOURCE_MUL, mul(lambda g, x, y: 1 / 0),
                                       new_style_mul(lambda g, x, y: (y, x))],
                         ids=["right-mul", "source-mul", "crashing-mul", "new-style-source-mul"])
@pytest.mark.parametrize("apple", [APPLE_BY_NAME, APPLE_BY_ALIAS, APPLE_BY_DEFAULT], ids=["name", "alias", "default"])
def test_graph_exercises_are_graded_with_reference_nodes_whatever_the_students_mul(mul_class, apple):
    """No double penalty: the graph's points depend on the graph, not on the student's Mul, however
    the student's code reaches its Mul (the substitution is by object, not by name)."""
    ns = notebook(mul_class, add_class=function("Add", torch.add, lambda ctx, g, x, y, out: (g, -g)), apple=apple)
    backward = mul_class.__dict__["backward"]
    check_graph(ns["apple_shopping"], book_apple, APPLE, ns, references(), upstream=2.5)
    check_graph(ns["fruit_shopping"], book_fruit, {"apple": 120, "num_apple": 5, "tangerine": 80,
                                                   "num_tangerine": 7, "ctax": 1.05}, ns, references(), upstream=0.75)
    assert ns["Mul"] is mul_class and mul_class.__dict__["backward"] is backward, "the student's Mul is put back"


def test_the_students_class_computes_as_the_reference_only_inside_and_is_restored_on_error():
    student = new_style_mul(lambda g, x, y: (y, x))
    saved = dict(student.__dict__)
    with pytest.raises(ZeroDivisionError), behaving_as(student, reference_mul()):
        check_function(student, torch.mul, random_inputs((2, 5), (5,), seed=9))
        1 / 0
    assert {k: student.__dict__.get(k) for k in saved} == saved and "vjp" not in student.__dict__
    with pytest.raises(GradientMistake, match="ignores grad_output"):
        check_function(student, torch.mul, random_inputs((2, 5), (2, 5), seed=9))


def test_graph_cut_by_detach_loses_the_graph_exercise():
    ns = notebook(RIGHT_MUL, wiring="price.detach()")
    check_graph(ns["apple_shopping"], book_apple, APPLE, ns)  # the nodes and values are right
    with pytest.raises(GradientMistake, match="apple의 기울기가 없지만(.|\n)*apple's gradient is none"):
        check_graph(ns["apple_shopping"], book_apple, APPLE, ns, references())


def test_wrong_wiring_and_torch_ops_fail_the_graph_exercise():
    ns = notebook(RIGHT_MUL, wiring="apple")
    with pytest.raises(GradientMistake, match=r"result의 순전파 값이 110이지만 책의 그래프에서는 220(.|\n)*are the inputs wired"):
        check_graph(ns["apple_shopping"], book_apple, APPLE, ns)
    ns["apple_shopping"] = lambda apple, num, ctax: (apple * num, apple * num * ctax)
    with pytest.raises(GradientMistake, match="build the price node with your Mul node"):
        check_graph(ns["apple_shopping"], book_apple, APPLE, ns)
    ns["apple_shopping"] = lambda apple, num, ctax: {"result": apple * num * ctax}
    with pytest.raises(GradientMistake, match="the price node was not returned"):
        check_graph(ns["apple_shopping"], book_apple, APPLE, ns)


def test_own_nodes_are_shown_beside_the_books_numbers(capsys):
    ns = notebook(SOURCE_MUL)
    show_book_numbers(ns["apple_shopping"], APPLE, {"apple": 2.2, "num": 110, "ctax": 200})
    out = capsys.readouterr().out
    assert "apple.grad =     2.0000   책 / book: 2.2      ✗" in out
    assert "ctax.grad =   200.0000   책 / book: 200      ✓" in out and "only that exercise loses points" in out
    show_book_numbers(notebook(mul(lambda g, x, y: 1 / 0))["apple_shopping"], APPLE, {"apple": 2.2})
    assert "ZeroDivisionError" in capsys.readouterr().out


def test_progress_report_runs_every_check_and_never_raises(capsys):
    def fails():
        raise GradientMistake("Mul", "틀렸습니다", "wrong")

    def blank():
        raise NotImplementedError()
    report_progress({"Square": lambda: None, "Mul": fails, "Add": blank,
                     "apple_shopping": lambda: undefined_name})  # noqa: F821
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[통과 PASS] Square"
    assert lines[1] == "[실패 FAIL] Mul" and "wrong" in lines[3]
    assert "[실패 FAIL] Add" in lines and any("not implemented yet" in line for line in lines)
    assert any("not run yet" in line and "undefined_name" in line for line in lines)
    assert lines[-1] == "--> 1/4 통과 / passed"


def test_trailing_nones_are_accepted_as_torch_accepts_them():
    check_function(mul(lambda g, x, y: (g * y, g * x, None, None)), torch.mul, random_inputs((3,), (3,)))
    with pytest.raises(GradientMistake, match="wrong number of returned gradients"):
        check_function(mul(lambda g, x, y: (g * y, None, g * x)), torch.mul, random_inputs((3,), (3,)))


# --- one source of cases: each wrong answer fails the notebook's hidden checks and the grader's ----

RUNNER = {"__name__": "verify_runner"}
exec((REPO_ROOT / "grader" / "inside" / "verify_runner.py").read_text(), RUNNER)


def graders_problems(assignment, grade_id, namespace):
    """The spec's cases for ``grade_id`` run in-process by the runner's own functions (the judges
    and the cases, without the sandbox and channel, which tests/test_verify.py covers)."""
    from grader.steps import verify
    generator = torch.Generator().manual_seed(11)
    problems = []
    for build in verify.spec_for(assignment).TESTS[grade_id]:
        case = build(generator)
        request = json.loads(json.dumps(case.request))
        try:
            result = RUNNER["KINDS"][request["kind"]](request, namespace)
        except Exception as error:  # the student's code raised
            problems.append(f"raised {error!r}")
            continue
        problems.append(case.reason(json.loads(json.dumps(result))))
    return [problem for problem in problems if problem]


def notebooks_problems(function, reference, key, **options):
    """What the notebook's hidden checks say, drawing every case of ``CASES[key]``."""
    problems = []
    for number, shapes in enumerate(CASES[key]):
        try:
            check_function(function, reference, random_inputs(*shapes, seed=number, **options),
                           seed=number, gradcheck=not options)
        except GradientMistake as mistake:
            problems.append(str(mistake))
    return problems


def softmax_problems(softmax):
    problems = []
    for number, (n, c) in enumerate(CASES["SoftmaxWithLoss"]):
        labels = torch.arange(n) % c
        for scale in (1.0, LARGE_LOGITS):
            (x,) = random_inputs((n, c), seed=number, scale=scale)
            try:
                check_function(softmax, F.cross_entropy, [x, labels], seed=number, gradcheck=scale == 1.0)
            except GradientMistake as mistake:
                problems.append(str(mistake))
    return problems


def saving_x(name, forward, backward):
    """A Function that saves its inputs and computes its gradient from them in backward."""
    return function(name, forward, lambda ctx, g, *saved: backward(g, *saved[:-1]))


def float32_buffer(g, t):  # a float32 buffer cast back: float64's dtype, float32's digits
    buffer = torch.zeros(t.shape)
    buffer += g * 2 * t
    return buffer.double()


def sum_without_keepdim(g, x, y):  # right for (n,) operands, wrong for (1, n)
    return tuple(g.sum(dim=0) if v.shape != g.shape else g for v in (x, y))


def naive_softmax(g, x, t):
    y = x.exp() / x.exp().sum(dim=1, keepdim=True)  # no max subtracted: inf / inf at large logits
    t = F.one_hot(t, x.shape[1]).to(x.dtype) if t.dim() == 1 else t
    return g * (y - t) / x.shape[0], None


def stable_softmax(g, x, t):
    t = F.one_hot(t, x.shape[1]).to(x.dtype) if t.dim() == 1 else t
    return g * (torch.softmax(x, dim=1) - t) / x.shape[0], None


def cross_entropy(x, t):
    return F.cross_entropy(x, t)


WRONG = {  # name: (Function, torch's op, CASES key, assignment, grade id, words of the notebook's message)
    "float32 buffer cast back": (saving_x("Square", torch.square, float32_buffer), torch.square, "Square",
                                 "a1_backprop", "test_square", "float32's ~7 digits"),
    "sum(dim=0) for a (1, n) operand": (saving_x("Add", torch.add, sum_without_keepdim), torch.add, "Add",
                                        "a1_backprop", "test_add", "shape"),
    "ReLU's gradient 1 at exactly 0": (saving_x("ReLU", torch.relu, lambda g, x: g * (x >= 0)), torch.relu, "ReLU",
                                       "a2_layers", "test_relu", "wrong gradient values"),
    "softmax without the max subtracted": (saving_x("SoftmaxWithLoss", cross_entropy, naive_softmax), None,
                                           "SoftmaxWithLoss", "a2_layers", "test_softmax_with_loss", "NaN"),
}
RIGHT = {
    "Square": saving_x("Square", torch.square, lambda g, t: g * 2 * t),
    "Add": saving_x("Add", torch.add, lambda g, x, y: (g.sum_to_size(x.shape), g.sum_to_size(y.shape))),
    "ReLU": saving_x("ReLU", torch.relu, lambda g, x: g * (x > 0)),
    "SoftmaxWithLoss": saving_x("SoftmaxWithLoss", cross_entropy, stable_softmax),
}


def notebook_and_grader(fn, op, key, assignment, grade_id):
    if key == "SoftmaxWithLoss":
        notebook = softmax_problems(fn)
    else:
        notebook = notebooks_problems(fn, op, key) + (notebooks_problems(fn, op, key, zeros=True) if key == "ReLU" else [])
    return notebook, graders_problems(assignment, grade_id, {"__name__": "__main__", key: fn})


@pytest.mark.parametrize("mistake", WRONG)
def test_each_wrong_answer_fails_the_notebooks_checks_and_the_graders(mistake):
    fn, op, key, assignment, grade_id, words = WRONG[mistake]
    notebook, grader = notebook_and_grader(fn, op, key, assignment, grade_id)
    assert notebook and any(words in problem for problem in notebook), notebook
    assert grader, "the grader's check passed it"


@pytest.mark.parametrize("key", RIGHT)
def test_the_right_variants_pass_both(key):
    assignment, grade_id = next((w[3], w[4]) for w in WRONG.values() if w[2] == key)
    op = {"Square": torch.square, "Add": torch.add, "ReLU": torch.relu}.get(key)
    assert notebook_and_grader(RIGHT[key], op, key, assignment, grade_id) == ([], [])


def copying(f, x, h=1e-4):
    """Perturbs a copy of x: right when f reads its argument, zeros when f reads x itself."""
    return central(f, x.clone(), h)


def test_a_numerical_gradient_that_perturbs_a_copy_fails_the_notebooks_check():
    with pytest.raises(GradientMistake, match="perturb a copy of x"):
        check_numerical_gradient(copying)


def test_a_numerical_gradient_that_perturbs_a_copy_fails_the_graders_check():
    assert graders_problems("a3_two_layer_net", "test_numerical_gradient", {"numerical_gradient": copying})


def test_a_gradient_that_never_zeroes_grad_fails_the_graders_check():
    namespace = {"__name__": "__main__", "torch": torch, "F": F}
    exec(NET.replace("GRADIENT", "        loss = self.loss(x, t)\n        loss.backward()\n"
                     "        return {name: p.grad for name, p in self.params.items()}\n"), namespace)
    problems = graders_problems("a3_two_layer_net", "test_two_layer_net", namespace)
    assert problems and all("gradient() called a second time" in p for p in problems), problems
    exec(NET.replace("GRADIENT", "        grads = torch.autograd.grad(self.loss(x, t), list(self.params.values()))\n"
                     "        return dict(zip(self.params, grads))\n"), namespace)
    assert graders_problems("a3_two_layer_net", "test_two_layer_net", namespace) == []


NET = '''
class ReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

class Affine(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W, b):
        return x @ W + b

class SoftmaxWithLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, t):
        return F.cross_entropy(x, t)

class TwoLayerNet:
    def __init__(self, i, h, o, weight_init_std=0.01, dtype=torch.float32, generator=None):
        self.params = {"W1": torch.zeros(i, h, dtype=dtype, requires_grad=True),
                       "b1": torch.zeros(h, dtype=dtype, requires_grad=True),
                       "W2": torch.zeros(h, o, dtype=dtype, requires_grad=True),
                       "b2": torch.zeros(o, dtype=dtype, requires_grad=True)}

    def predict(self, x):
        p = self.params
        return Affine.apply(ReLU.apply(Affine.apply(x, p["W1"], p["b1"])), p["W2"], p["b2"])

    def loss(self, x, t):
        return SoftmaxWithLoss.apply(self.predict(x), t)

    def gradient(self, x, t):
GRADIENT'''
