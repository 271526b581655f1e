"""Run as a script in a fresh process: does a module expose an autograd-backed Function?

``python oracle_probe.py FOLDER MODULE`` imports MODULE from FOLDER and prints one JSON object:
{"functions": {name: verdict}}. It finds every ``torch.autograd.Function`` subclass the module
exposes (its attributes, inside dicts, lists and tuples, classes created while it was imported)
or makes (its public functions called with plausible arguments: a name and a torch op), then runs
each one's backward through autograd's engine on fresh float64 inputs under a
``TorchDispatchMode`` that sees every operator (``Observer``): a verdict is "autograd" when the
backward switched grad mode on or re-entered the engine, whatever the spelling
(``enable_grad`` + ``autograd.grad``, ``torch.func``, ``.backward()``), "derivative kernel" when
it called a ``*_backward`` kernel, "formula" otherwise, or "unchecked: why" when it could not run.
"""
import importlib
import inspect
import json
import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode

PLAUSIBLE = [("Mul", torch.mul), (torch.mul,), ("Mul",), ()]


class Observer(TorchDispatchMode):
    """Records the operators a backward ran that an honest formula never needs.

    During a backward pass autograd's engine runs with grad mode off and under one graph task:
    an operator run with grad mode on (a graph built inside backward, to differentiate it), under
    another graph task (the engine re-entered: ``autograd.grad``, ``torch.func``, ``.backward()``)
    or a ``*_backward`` kernel (torch's own derivative) is recorded.
    """

    def __init__(self):
        super().__init__()
        self.outer_task, self.autograd, self.kernels = None, [], []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.name()
        task = torch._C._current_graph_task_id()
        if task != -1 and (torch.is_grad_enabled() or task != self.outer_task):
            self.autograd.append(name)
        if "backward" in name:
            self.kernels.append(name)
        return func(*args, **(kwargs or {}))


def all_functions():
    found, stack = set(), list(torch.autograd.Function.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls not in found:
            found.add(cls)
            stack.extend(cls.__subclasses__())
    return found


def functions_in(value, depth=0):
    """The Function subclasses reachable from ``value`` through containers (a few levels deep)."""
    if isinstance(value, type) and issubclass(value, torch.autograd.Function):
        return {value}
    if depth > 3:
        return set()
    if isinstance(value, dict):
        values = list(value.values())
    elif isinstance(value, (list, tuple, set, frozenset)):
        values = list(value)
    else:
        return set()
    return set().union(*(functions_in(v, depth + 1) for v in values)) if values else set()


def made_by_factories(module):
    found = set()
    for name, value in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(value) or value.__module__ != module.__name__:
            continue
        try:
            required = [p for p in inspect.signature(value).parameters.values()
                        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            continue
        for args in PLAUSIBLE:
            if len(args) == len(required):
                try:
                    found |= functions_in(value(*args))
                except Exception:  # not a factory for these arguments
                    pass
    return found


def _input_counts(function):
    """How many inputs to try forward with: its signature's count, then 1 to 3 (``*inputs``)."""
    forward = function.__dict__.get("forward")
    forward = getattr(forward, "__func__", forward)
    try:
        count = len(inspect.signature(forward).parameters) - (0 if "setup_context" in function.__dict__ else 1)
    except (TypeError, ValueError):
        count = 2
    return [count, *(n for n in (1, 2, 3) if n != count)]


def verdict(function):
    """How ``function``'s backward computes, seen from what it runs."""
    generator = torch.Generator().manual_seed(0)
    for count in _input_counts(function):
        inputs = [(torch.rand(3, generator=generator, dtype=torch.float64) + 0.5).requires_grad_()
                  for _ in range(max(count, 1))]
        try:
            out = function.apply(*inputs)
            upstream = torch.rand(out.shape, generator=generator, dtype=torch.float64) + 0.5
            break
        except Exception as error:  # not this many inputs
            problem = f"unchecked: forward raised {type(error).__name__}: {str(error)[:200]}"
    else:
        return problem
    observer = Observer()

    def outer_task(grad_outputs):
        observer.outer_task = torch._C._current_graph_task_id()
    out.grad_fn.register_prehook(outer_task)
    try:
        with observer:
            torch.autograd.grad(out, inputs, upstream, allow_unused=True)
    except Exception as error:
        return f"unchecked: backward raised {type(error).__name__}: {str(error)[:200]}"
    if observer.autograd:
        return "autograd"
    if observer.kernels:
        return "derivative kernel"
    return "formula"


def main(folder, module_name):
    sys.path.insert(0, folder)
    before = all_functions()
    module = importlib.import_module(module_name)
    found = functions_in(vars(module)) | (all_functions() - before)
    found |= made_by_factories(module)
    print(json.dumps({"functions": {f"{f.__module__}.{f.__qualname__}": verdict(f) for f in found}}))


if __name__ == "__main__":
    main(*sys.argv[1:])
