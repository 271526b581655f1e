"""The graph drawer draws the book's figures: names, operations, values above and red gradients below."""
import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from grader.course import REPO_ROOT  # noqa: E402

sys.path.insert(0, str(REPO_ROOT / "solutions" / "a1_backprop"))
from graph_drawer import check_predictions, draw_graph, trace_graph  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def leaves(**values):
    return {name: torch.tensor([value], requires_grad=True) for name, value in values.items()}


def drawn(ax):
    """(text, colour, x, y) of every non-empty text artist on the axes."""
    return [(t.get_text(), matplotlib.colors.to_hex(t.get_color()), *t.get_position())
            for t in ax.texts if t.get_text()]


def edge_labels(ax):
    """Value -> gradient for each edge: a black number with a red one right below it."""
    texts = drawn(ax)
    values = [t for t in texts if t[1] == "#000000"]
    grads = [t for t in texts if t[1] == "#ff0000"]
    pairs = {}
    for text, _, x, y in grads:
        above = [v for v in values if v[2] == x and 0 < v[3] - y < 0.2]
        assert len(above) == 1, f"gradient {text} has no value right above it"
        pairs.setdefault(above[0][0], []).append(text)
    return pairs


def apple_graph():
    v = leaves(apple=100.0, num=2.0, ctax=1.1)
    price = v["apple"] * v["num"]
    result = price * v["ctax"]
    return result, dict(v, price=price, result=result)


def fruit_graph():
    v = leaves(apple=100.0, num_apple=2.0, tangerine=150.0, num_tangerine=3.0, ctax=1.1)
    apple_price = v["apple"] * v["num_apple"]
    tangerine_price = v["tangerine"] * v["num_tangerine"]
    result = (apple_price + tangerine_price) * v["ctax"]
    return result, dict(v, result=result)


def test_apple_graph_shows_the_books_numbers():
    result, names = apple_graph()
    ax = draw_graph(result, names)
    texts = [t[0] for t in drawn(ax)]
    assert {"apple", "num", "ctax", "result"} <= set(texts)
    assert texts.count("×") == 2
    # forward value above -> gradient below, in red (the book's figure 5-16)
    assert edge_labels(ax) == {"100": ["2.2"], "2": ["110"], "1.1": ["200"], "200": ["1.1"], "220": ["1"]}


def test_fruit_graph_shows_the_books_numbers():
    result, names = fruit_graph()
    ax = draw_graph(result, names)
    texts = [t[0] for t in drawn(ax)]
    assert texts.count("×") == 3 and texts.count("+") == 1
    assert {"apple", "num_apple", "tangerine", "num_tangerine", "ctax", "result"} <= set(texts)
    assert edge_labels(ax) == {"100": ["2.2"], "2": ["110"], "150": ["3.3"], "3": ["165"], "1.1": ["650"],
                               "200": ["1.1"], "450": ["1.1"], "650": ["1.1"], "715": ["1"]}


def test_leaves_on_the_left_and_the_output_on_the_right():
    result, names = fruit_graph()
    ax = draw_graph(result, names)
    x = {t[0]: t[2] for t in drawn(ax)}
    assert x["apple"] == x["ctax"] == x["num_tangerine"] < x["+"] < x["result"]


def test_drawing_leaves_grads_untouched_and_backward_still_works():
    result, names = apple_graph()
    draw_graph(result, names)
    assert all(names[n].grad is None for n in ("apple", "num", "ctax"))
    result.backward()
    assert names["apple"].grad.item() == pytest.approx(2.2)


def test_custom_functions_and_an_upstream_gradient():
    class Mul(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y

        @staticmethod
        def backward(ctx, g):
            x, y = ctx.saved_tensors
            return g * y, g * x

    v = leaves(apple=100.0, num=2.0, ctax=1.1)
    result = Mul.apply(Mul.apply(v["apple"], v["num"]), v["ctax"])
    edges, _ = trace_graph(result, v, upstream=torch.tensor([2.0]))
    by_value = {round(e.value.item(), 4): round(e.grad.item(), 4) for e in edges}
    # the unnamed intermediate (price 200) is recomputed with the student's forward
    assert by_value == {100.0: 4.4, 2.0: 220.0, 1.1: 400.0, 200.0: 2.2, 220.0: 2.0}
    texts = [t[0] for t in drawn(draw_graph(result, v))]
    assert texts.count("×") == 2


def test_a_leaf_used_twice_gets_one_gradient_per_edge():
    x = torch.tensor(3.0, requires_grad=True)
    y = torch.tensor(2.0, requires_grad=True)
    z = x * y + x
    edges, labels = trace_graph(z, {"x": x, "y": y})
    from_x = sorted(e.grad.item() for e in edges if labels.get(e.source) == "x")
    assert from_x == [1.0, 2.0]  # through + directly, and through × (times y)
    assert [t[0] for t in drawn(draw_graph(z, {"x": x, "y": y}))].count("x") == 1


def test_freed_graph_is_explained():
    result, names = apple_graph()
    result.backward()
    with pytest.raises(RuntimeError, match="draw it before calling backward"):
        draw_graph(result, names)


def test_korean_labels_render_without_missing_glyphs():
    """Hangul falls back to a CJK font (fonts-noto-cjk): no boxes, no "Glyph ... missing" warning."""
    v = leaves(apple=100.0, num=2.0)
    result = v["apple"] * v["num"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = draw_graph(result, {"사과 apple": v["apple"], "개수 num": v["num"], "금액 result": result})
        ax.set_xlabel("에폭 / epoch")
        ax.figure.canvas.draw()
    assert "사과 apple" in [t[0] for t in drawn(ax)] and "순전파" in ax.get_title()


def test_hidden_gradients_are_question_marks_but_the_upstream():
    result, names = fruit_graph()
    ax = draw_graph(result, names, hide_grads=True)
    assert edge_labels(ax) == {"100": ["?"], "2": ["?"], "150": ["?"], "3": ["?"], "1.1": ["?"],
                               "200": ["?"], "450": ["?"], "650": ["?"], "715": ["1"]}


def test_drawing_leaves_a_named_retained_gradient_untouched():
    result, names = apple_graph()
    names["price"].retain_grad()
    draw_graph(result, names)
    assert names["price"].grad is None


def test_predictions_are_checked_with_a_float32_tolerance_then_revealed(capsys):
    result, names = apple_graph()
    verdicts = check_predictions(result, names, {"price": 1.1, "apple": 2.2, "num": 100, "ctax": None})
    assert verdicts == {"price": True, "apple": True, "num": False, "ctax": None}
    out = capsys.readouterr().out
    assert "2 of 4 right" in out and "not predicted" in out and "wrong" in out
    assert edge_labels(plt.gca())["100"] == ["2.2"]  # the drawing reveals the gradients
    assert all(names[n].grad is None for n in ("apple", "num", "ctax"))


def test_nothing_predicted_says_so_and_an_unknown_name_is_named(capsys):
    result, names = apple_graph()
    assert check_predictions(result, names, {"apple": None}) == {"apple": None}
    assert "nothing predicted yet" in capsys.readouterr().out
    with pytest.raises(KeyError, match="banana"):
        check_predictions(result, names, {"banana": 1.0})


def test_a_prediction_for_a_node_no_gradient_reaches_is_wrong(capsys):
    v = leaves(apple=100.0, num=2.0, ctax=1.1)
    price = v["apple"] * v["num"]
    result = price.detach() * v["ctax"]  # the gradient never reaches apple and num
    assert check_predictions(result, dict(v, price=price), {"apple": 2.2, "ctax": 200}) == {"apple": False,
                                                                                           "ctax": True}
    assert "no gradient reaches it" in capsys.readouterr().out
