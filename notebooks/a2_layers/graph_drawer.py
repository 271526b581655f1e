"""Draw a small autograd graph the way chapter 5 of the book does, with matplotlib only.

Operation nodes (×, +, ...) are circles, variables stand at the leaves on the left, the forward
value is written above each edge and the backward gradient below it in red. The graph is read
from ``grad_fn.next_functions``; the gradients are collected with hooks on the nodes during a
``torch.autograd.grad`` call that leaves every ``.grad`` untouched.

    price = apple * num
    result = price * ctax
    draw_graph(result, {"apple": apple, "num": num, "ctax": ctax, "price": price, "result": result})

Two ways to look at a backward pass, for the student's own Functions and torch's nodes alike:
``check_predictions`` compares gradients a student predicted from a drawing with "?" in place of the
gradients (``draw_graph(..., hide_grads=True)``) and then reveals them; ``trace_backward`` runs
``.backward()`` and shows in which order the nodes' ``backward`` ran and which ``grad_output`` each got.

Importing it also lets every matplotlib figure show Korean (``use_korean_font``).
"""
import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib import font_manager

__all__ = ["Edge", "Step", "check_predictions", "draw_edges", "draw_graph", "trace_backward", "trace_graph", "use_korean_font"]

# Fonts with Hangul, best first; Debian's fonts-noto-cjk has the first.
KOREAN_FONTS = ("Noto Sans CJK KR", "NanumGothic", "Malgun Gothic", "AppleGothic")
KOREAN_FONT_FILES = ("NotoSansCJK-Regular", "NanumGothic.ttf")
KEY = "위: 순전파 값, 아래(빨간색): 기울기 / above: forward value, below (red): gradient"
HIDDEN = "?"  # in place of a gradient the student is to predict
STEP_COLOR = "#1f77b4"

SYMBOLS = {"Mul": "×", "Add": "+", "Sub": "−", "Div": "÷", "Neg": "−", "Pow": "**", "Exp": "exp",
           "Sigmoid": "σ", "Square": "²", "SoftmaxWithLoss": "Softmax\nwith\nLoss"}
# Built-in nodes whose forward value is recomputed from their inputs when it is not named.
FORWARD = {"Mul": torch.mul, "Add": torch.add, "Sub": torch.sub, "Div": torch.div, "Neg": torch.neg,
           "Exp": torch.exp, "Sigmoid": torch.sigmoid}


@dataclass
class Edge:
    """One arrow: ``source`` (a leaf tensor's node or an operation) feeds ``target`` (None: output)."""
    source: object
    target: object
    value: torch.Tensor = None
    grad: torch.Tensor = None


def use_korean_font():
    """Make matplotlib fall back to a Korean font for Hangul; returns its name, or None if none is installed.

    matplotlib's default font (DejaVu Sans) has no Hangul: without a fallback a Korean label shows
    boxes and warns "Glyph ... missing". Latin letters, digits and symbols keep DejaVu Sans.
    """
    installed = {font.name for font in font_manager.fontManager.ttflist}
    if installed.isdisjoint(KOREAN_FONTS):  # installed after matplotlib cached its font list
        for path in font_manager.findSystemFonts():
            if any(name in path for name in KOREAN_FONT_FILES):
                font_manager.fontManager.addfont(path)
        installed = {font.name for font in font_manager.fontManager.ttflist}
    name = next((font for font in KOREAN_FONTS if font in installed), None)
    if name:
        plt.rcParams["font.family"] = ["sans-serif", name]
    return name


use_korean_font()


def op_name(node):
    """'Mul' for torch's MulBackward0 and for a custom Function named Mul."""
    if hasattr(node, "_forward_cls"):
        return node._forward_cls.__name__
    return type(node).__name__.split("Backward")[0]


def _walk(root):
    """Operation nodes in depth-first order from the root, and every edge (child, parent, i)."""
    order, edges, seen, stack = [], [], set(), [root]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        order.append(node)
        children = [(child, i) for i, (child, _) in enumerate(node.next_functions) if child is not None]
        for child, i in children:
            edges.append((child, node, i))
        stack.extend(child for child, _ in reversed(children) if not hasattr(child, "variable"))
    return order, edges


def _value(node, named, cache):
    """The forward value of a node's output: a leaf's tensor, a named tensor, or recomputed."""
    if node not in cache:
        cache[node] = None
        if hasattr(node, "variable"):
            cache[node] = node.variable.detach()
        elif node in named:
            cache[node] = named[node].detach()
        else:
            inputs = [None if c is None else _value(c, named, cache) for c, _ in node.next_functions]
            forward = getattr(node, "_forward_cls", None)
            forward = forward.apply if forward else FORWARD.get(op_name(node))
            if forward and inputs and all(x is not None for x in inputs):
                with torch.no_grad():
                    cache[node] = forward(*inputs)
    return cache[node]


def trace_graph(output, names=None, upstream=None, backward=False, on_call=None):
    """The graph of ``output`` as edges with forward values and backward gradients.

    names: {name: tensor} for leaves and intermediate results (only used for values and labels).
    upstream: the gradient fed into ``output`` (default: ones, as ``backward()`` would).
    backward: run ``output.backward(upstream)`` itself, which fills ``.grad`` as usual and frees the
    graph; otherwise a ``torch.autograd.grad`` call leaves the leaves' ``.grad`` (and the named tensors'
    ``retain_grad()`` gradients) as they were.
    on_call: called as ``on_call(node, grad_outputs)`` just before each node's backward runs.
    The gradients are read by hooks on the nodes, which never change them.
    Returns (edges, labels), labels mapping a node to its name.
    """
    if output.grad_fn is None:
        raise ValueError("output에 grad_fn이 없습니다. requires_grad=True인 입력으로 계산하세요 / "
                         "output has no grad_fn: compute it from inputs with requires_grad=True")
    names = names or {}
    by_id = {id(t): n for n, t in names.items()}
    order, links = _walk(output.grad_fn)
    labels = {node: by_id.get(id(node.variable)) for node, _, _ in links if hasattr(node, "variable")}
    named = {t.grad_fn: t for t in names.values() if t.grad_fn is not None}
    labels.update({node: n for n, t in names.items() for node in [t.grad_fn] if node is not None})
    named[output.grad_fn] = output

    grads = {}
    hooks = [node.register_hook(lambda g_in, g_out, node=node: grads.__setitem__(node, g_in))
             for node in order]
    if on_call:
        hooks += [node.register_prehook(lambda g_out, node=node: on_call(node, g_out)) for node in order]
    leaves = [node.variable for node, _, _ in links if hasattr(node, "variable")]
    upstream = torch.ones_like(output) if upstream is None else torch.as_tensor(upstream, dtype=output.dtype)
    retained = {t: t.grad for t in names.values() if t.retains_grad}  # autograd.grad still fills these
    try:
        if backward:
            output.backward(upstream)
        else:
            torch.autograd.grad(output, list({id(x): x for x in leaves}.values()), upstream,
                                retain_graph=True, allow_unused=True)
            for tensor, grad in retained.items():
                tensor.grad = grad
    except RuntimeError as error:
        if "second time" in str(error):
            raise RuntimeError("그래프가 이미 backward로 해제되었습니다. backward() 전에 그리거나 다시 "
                               "계산하세요 / the graph was freed by backward(): draw it before "
                               "calling backward(), or build it again") from None
        raise
    finally:
        for hook in hooks:
            hook.remove()

    cache = {}
    edges = [Edge(child, parent, _value(child, named, cache), (grads.get(parent) or [None] * (i + 1))[i])
             for child, parent, i in links]
    edges.append(Edge(output.grad_fn, None, output.detach(), upstream))
    return edges, labels


def fmt(tensor):
    """A number as the book prints it: 2.2 for float32's 2.2000000477, 110 for 110.0000076."""
    if tensor is None:
        return ""
    if tensor.numel() == 1:
        return f"{tensor.item():.4g}"
    if tensor.numel() <= 3:
        return "[" + ", ".join(f"{v:.3g}" for v in tensor.reshape(-1).tolist()) + "]"
    return f"shape {tuple(tensor.shape)}"


def _layout(edges):
    """Columns (leaves at 0, each operation right of its inputs) and rows (leaves top to bottom)."""
    column, row, leaf_rows = {}, {}, []
    inputs = {}
    for e in edges:
        if e.target is not None:
            inputs.setdefault(e.target, []).append(e.source)

    def place(node):
        if node in column:
            return
        if node not in inputs:  # a leaf
            column[node], row[node] = 0, len(leaf_rows)
            leaf_rows.append(node)
            return
        for child in inputs[node]:
            place(child)
        column[node] = 1 + max(column[c] for c in inputs[node])
        row[node] = sum(row[c] for c in inputs[node]) / len(inputs[node])

    place(edges[-1].source)
    return column, row


def draw_graph(output, names=None, upstream=None, ax=None, hide_grads=False, steps=None):
    """Draw the graph of ``output`` (see ``trace_graph``) in the book's style; returns the Axes.

    Names may be Korean ({"사과 apple": apple}); the title explains the numbers in both languages.
    hide_grads: write "?" in place of each gradient but the upstream one (for predicting them).
    steps: {node: n}, drawn as a blue number above each operation node (see ``trace_backward``).
    """
    edges, labels = trace_graph(output, names, upstream)
    return draw_edges(edges, labels, ax, hide_grads, steps)


def draw_edges(edges, labels, ax=None, hide_grads=False, steps=None):
    """Draw what ``trace_graph`` returned (see ``draw_graph``); returns the Axes."""
    column, row = _layout(edges)
    width = max(column.values()) + 1
    if ax is None:
        _, ax = plt.subplots(figsize=(2.2 * (width + 1.2), 1.0 * (max(row.values()) + 1) + 0.6))
    xy = {node: (column[node] * 2.0, -1.2 * row[node]) for node in column}
    root = edges[-1].source
    end = (xy[root][0] + 2.0, xy[root][1])

    for e in edges:
        start, stop = xy[e.source], (end if e.target is None else xy[e.target])
        ax.annotate("", stop, start, arrowprops=dict(arrowstyle="->", color="black", shrinkA=14,
                                                     shrinkB=16 if e.target is not None else 0))
        at = 0.3 if column[e.source] == 0 else 0.5  # near a leaf, where the edges are apart
        mid = (start[0] + at * (stop[0] - start[0]), start[1] + at * (stop[1] - start[1]))
        ax.text(mid[0], mid[1] + 0.06, fmt(e.value), ha="center", va="bottom", fontsize=11)
        grad = HIDDEN if hide_grads and e.target is not None else fmt(e.grad)  # the upstream stays given
        ax.text(mid[0], mid[1] - 0.06, grad, ha="center", va="top", fontsize=11, color="red")
    for node, (x, y) in xy.items():
        if column[node] == 0:
            ax.text(x - 0.1, y, labels.get(node) or "", ha="right", va="center", fontsize=12)
        else:
            ax.add_patch(plt.Circle((x, y), 0.28, facecolor="white", edgecolor="black", zorder=3))
            symbol = SYMBOLS.get(op_name(node), op_name(node))
            small = max(len(line) for line in symbol.split("\n")) > 3  # a name, not a symbol
            ax.text(x, y, symbol, ha="center", va="center", fontsize=7 if small else 13, zorder=4)
            if steps and node in steps:
                ax.text(x, y + 0.32, str(steps[node]), ha="center", va="bottom", fontsize=11, color=STEP_COLOR,
                        fontweight="bold", bbox=dict(boxstyle="circle", facecolor="white", edgecolor=STEP_COLOR))
    ax.text(end[0] + 0.1, end[1], labels.get(root) or "", ha="left", va="center", fontsize=12)
    ax.set_xlim(-1.4, end[0] + 1.2)
    ax.set_ylim(-1.2 * max(row.values()) - 0.6, 0.6)
    ax.set_aspect("equal")
    ax.axis("off")
    if not ax.get_title():
        ax.set_title(KEY, fontsize=10)
    return ax


def gradients_by_name(edges, labels):
    """{name: gradient} for each named node of a traced graph (summed over a leaf's edges), as
    ``backward`` would leave them in ``.grad`` or, for an intermediate result, ``retain_grad()``."""
    grads = {}
    for e in edges:
        name = labels.get(e.source)
        if name is not None and e.grad is not None:
            grads[name] = e.grad if name not in grads else grads[name] + e.grad
    return grads


def check_predictions(output, names, predicted, upstream=None, rel_tol=1e-4):
    """Compare predicted gradients with the ones ``output``'s own backward gives, then draw them.

    predicted: {name: number or None} for names of ``names``; None means "not predicted".
    A prediction is right within ``rel_tol`` (float32 holds 2.2 as 2.2000000477).
    Prints a table in Korean and English, draws the graph with the gradients, and returns
    {name: True, False or None (not predicted)}.
    """
    unknown = sorted(set(predicted) - set(names))
    if unknown:
        raise KeyError(f"그래프에 없는 이름입니다 / not a name in the graph: {unknown}; names: {sorted(names)}")
    edges, labels = trace_graph(output, names, upstream)
    grads = gradients_by_name(edges, labels)
    verdicts, width = {}, max(len(name) for name in predicted)
    print(f"{'':>{width}} | 예측 / predicted | 여러분의 backward / your backward | 판정 / verdict")
    for name, guess in predicted.items():
        actual = grads.get(name)
        if guess is None:
            verdicts[name], mark = None, "예측 없음 / not predicted"
        elif actual is None:
            verdicts[name], mark = False, "기울기가 오지 않습니다 / no gradient reaches it"
        else:
            verdicts[name] = math.isclose(float(guess), actual.item(), rel_tol=rel_tol, abs_tol=1e-12)
            mark = "맞음 / right" if verdicts[name] else "틀림 / wrong"
        shown = HIDDEN if guess is None else f"{float(guess):.4g}"
        print(f"{name:>{width}} | {shown:>16} | {fmt(actual):>32} | {mark}")
    right = sum(v is True for v in verdicts.values())
    if all(v is None for v in verdicts.values()):
        print("아직 예측하지 않았습니다. None을 숫자로 바꾸고 다시 실행해 보세요 / "
              "nothing predicted yet: replace the Nones with numbers and run again")
    else:
        print(f"{len(verdicts)}개 중 {right}개를 맞혔습니다 / {right} of {len(verdicts)} right")
    draw_edges(edges, labels)
    return verdicts


def _node_name(node, labels):
    """'Mul.backward → price' for a student's Function, 'MulBackward0 (torch)' for a built-in node."""
    own = hasattr(node, "_forward_cls")
    name = f"{node._forward_cls.__name__}.backward" if own else f"{type(node).__name__} (torch)"
    return f"{name} → {labels[node]}" if node in labels else name


@dataclass
class Step:
    """One call of a node's backward during ``.backward()``: the node and the grad_output it received."""
    number: int
    node: object
    grad_output: tuple


def trace_backward(output, upstream=None, names=None, draw=True):
    """Run ``output.backward(upstream)`` and record each node's backward call, in the order they happen.

    Hooks on the graph's nodes (``Node.register_prehook``, put on from outside) only read the
    gradients, so ``.grad`` ends exactly as a plain ``output.backward(upstream)`` leaves it, and the
    student's classes are not touched. Prints a numbered table in Korean and English, draws the graph
    with each node's step number (``draw``), and returns the list of ``Step``.
    """
    steps = []

    def record(node, grad_outputs):
        steps.append(Step(len(steps) + 1, node, tuple(None if g is None else g.detach().clone()
                                                      for g in grad_outputs)))

    edges, labels = trace_graph(output, names, upstream, backward=True, on_call=record)
    print(f"상류 기울기 / upstream gradient: {fmt(edges[-1].grad)}")
    print("단계 step | 호출된 backward / backward called | 받은 grad_output / grad_output received")
    for step in steps:
        received = ", ".join("None" if g is None else fmt(g) for g in step.grad_output)
        print(f"{step.number:>9} | {_node_name(step.node, labels)} | {received}")
    if draw:
        ax = draw_edges(edges, labels, steps={step.node: step.number for step in steps})
        ax.set_title(KEY + "\n파란 숫자: backward가 호출된 순서 / blue numbers: the order backward was called in",
                     fontsize=10)
    return steps
