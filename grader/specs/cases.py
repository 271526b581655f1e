"""The cases a spec lists: inputs and upstream gradients drawn at grading time, answers from torch.

Each case is a function of a ``torch.Generator``: it returns (what the sandboxed runner needs:
names, inputs and upstream gradient as numbers; what the trusted side expects: torch's own
forward values and gradients). Built on the trusted side only.
"""
import torch


def _random(shape, generator):
    values = torch.rand(shape, generator=generator, dtype=torch.float64) * 3 + 0.5
    signs = torch.where(torch.rand(shape, generator=generator) < 0.3, -1.0, 1.0).to(torch.float64)
    return values * signs


class Labels:
    """A non-differentiable input: ``count`` random class labels, as integers or one-hot rows."""

    def __init__(self, count, classes, one_hot=False):
        self.count, self.classes, self.one_hot = count, classes, one_hot

    def draw(self, generator):
        labels = torch.randint(self.classes, (self.count,), generator=generator)
        return torch.nn.functional.one_hot(labels, self.classes).double() if self.one_hot else labels


def function_case(target, reference, shapes, exact_shapes=False):
    """A Function ``target`` checked against ``reference`` (torch ops) on fresh inputs.

    shapes: one entry per input, a shape (a random float64 input that gets a gradient) or a
    ``Labels`` (an input without one). exact_shapes: gradients must have their input's shape
    (no summing down of broadcast gradients, as autograd would do).
    """
    def build(generator):
        inputs = [s.draw(generator) if isinstance(s, Labels) else _random(s, generator) for s in shapes]
        leaves = [x.clone().requires_grad_(x.is_floating_point() and not isinstance(s, Labels))
                  for x, s in zip(inputs, shapes)]
        differentiable = [x for x in leaves if x.requires_grad]
        out = reference(*leaves)
        upstream = torch.rand(out.shape, generator=generator, dtype=torch.float64) * 2 + 0.5
        found = iter(torch.autograd.grad(out, differentiable, upstream, allow_unused=True))
        grads = [next(found) if x.requires_grad else None for x in leaves]
        return {"kind": "function", "target": target, "inputs": [x.tolist() for x in inputs],
                "dtypes": [str(x.dtype).replace("torch.", "") for x in inputs],
                "upstream": upstream.tolist()}, {"out": out.detach(), "grads": grads,
                                                  "exact_shapes": exact_shapes}
    return build


def graph_case(target, reference, values, output, nodes):
    """A graph-building function ``target``: gradients of its ``output`` and the node types used."""
    def build(generator):
        inputs = [torch.tensor([v * float(1 + torch.rand(1, generator=generator))], dtype=torch.float64)
                  for v in values]
        leaves = [x.clone().requires_grad_() for x in inputs]
        out = reference(*leaves)
        upstream = torch.rand(out.shape, generator=generator, dtype=torch.float64) + 0.5
        grads = torch.autograd.grad(out, leaves, upstream)
        return {"kind": "graph", "target": target, "output": output,
                "inputs": [x.tolist() for x in inputs], "upstream": upstream.tolist()}, \
            {"out": out.detach(), "grads": grads, "nodes": nodes}
    return build
