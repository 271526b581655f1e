"""trace_backward shows the order in which a graph's nodes run their backward and what each receives,
from hooks on the nodes alone: the student's classes and every gradient stay as they are."""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from grader.course import REPO_ROOT  # noqa: E402

sys.path.insert(0, str(REPO_ROOT / "solutions" / "a1_backprop"))
from graph_drawer import STEP_COLOR, trace_backward, trace_graph  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


class Mul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, grad_output):
        x, y = ctx.saved_tensors
        return grad_output * y, grad_output * x


class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        return t ** 2

    @staticmethod
    def backward(ctx, grad_output):
        t, = ctx.saved_tensors
        return grad_output * 2 * t


def apple(**values):
    leaves = {n: torch.tensor([v], requires_grad=True) for n, v in dict(apple=100.0, num=2.0, ctax=1.1).items()}
    price = Mul.apply(leaves["apple"], leaves["num"])
    result = Mul.apply(price, leaves["ctax"])
    return result, dict(leaves, price=price, result=result)


def mixed(x, y, w):
    """The student's Functions and torch's built-in nodes together; x is used three times."""
    t = Mul.apply(x, y) + torch.sigmoid(x)
    t.retain_grad()
    return (Square.apply(t) * w).sum() + x.exp().sum(), t


def test_apple_graph_steps_from_the_output_with_the_upstream_gradient():
    result, names = apple()
    steps = trace_backward(result, torch.tensor([2.0]), names, draw=False)
    assert [s.number for s in steps] == [1, 2]
    assert [s.node for s in steps] == [result.grad_fn, names["price"].grad_fn]
    assert [s.grad_output[0].item() for s in steps] == [2.0, pytest.approx(2.2)]
    assert names["apple"].grad.item() == pytest.approx(4.4) and names["ctax"].grad.item() == pytest.approx(400.0)


def test_printed_table_names_the_students_backward(capsys):
    result, names = apple()
    trace_backward(result, None, names, draw=False)
    lines = capsys.readouterr().out.splitlines()
    assert "upstream gradient: 1" in lines[0]
    assert lines[2].split("|")[1].strip() == "Mul.backward → result"
    assert lines[3].split("|")[1].strip() == "Mul.backward → price" and lines[3].split("|")[2].strip() == "1.1"


def test_gradients_are_identical_with_and_without_the_trace():
    upstream = torch.tensor(0.7, dtype=torch.float64)
    plain, traced = [], []
    for run, out in ((False, plain), (True, traced)):
        x, y, w = (torch.linspace(-1.0, 1.5, 5, dtype=torch.float64).add(i).requires_grad_() for i in range(3))
        z, t = mixed(x, y, w)
        if run:
            trace_backward(z, upstream, {"x": x, "t": t}, draw=True)
        else:
            z.backward(upstream)
        out += [x.grad, y.grad, w.grad, t.grad]
    assert all(torch.equal(a, b) for a, b in zip(plain, traced))
    assert torch.autograd.gradcheck(lambda *v: mixed(*v)[0], tuple(
        torch.linspace(-1.0, 1.5, 5, dtype=torch.float64).add(i).requires_grad_() for i in range(3)))


def test_every_node_runs_after_the_nodes_that_use_its_output():
    x, y, w = (torch.rand(3, requires_grad=True) for _ in range(3))
    z, _ = mixed(x, y, w)
    steps = trace_backward(z, None, draw=False)
    position = {s.node: s.number for s in steps}
    assert len(position) == len(steps)  # each node once
    for node, number in position.items():
        for child, _ in node.next_functions:
            if child in position:
                assert position[child] > number, (node, child)
    names = {type(s.node).__name__ for s in steps}
    assert {"SigmoidBackward0", "ExpBackward0", "SumBackward0"} <= names
    assert sum(hasattr(s.node, "_forward_cls") for s in steps) == 2  # Mul and Square


def test_the_hooks_are_removed_and_the_classes_untouched():
    before = dict(vars(Mul))
    result, names = apple()
    calls = []
    trace_graph(result, names, on_call=lambda node, grad_outputs: calls.append(node))  # the graph is retained
    torch.autograd.grad(result, [names["apple"]], torch.ones(1))  # a second pass is not recorded
    assert calls == [result.grad_fn, names["price"].grad_fn] and dict(vars(Mul)) == before
    result, names = apple()
    trace_backward(result, None, names, draw=False)
    assert dict(vars(Mul)) == before and names["apple"].grad.item() == pytest.approx(2.2)


def test_the_drawing_numbers_each_node_in_blue():
    result, names = apple()
    trace_backward(result, None, names)
    ax = plt.gca()
    blue = [(t.get_text(), t.get_position()) for t in ax.texts
            if matplotlib.colors.to_hex(t.get_color()) == STEP_COLOR]
    assert sorted(text for text, _ in blue) == ["1", "2"]
    x = dict((text, pos[0]) for text, pos in blue)
    assert x["1"] > x["2"]  # the output's node, at the right, runs first
    assert "backward" in ax.get_title()


def test_an_output_without_a_graph_is_explained():
    with pytest.raises(ValueError, match="requires_grad=True"):
        trace_backward(torch.ones(2))
