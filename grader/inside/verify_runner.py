"""Runs inside the sandbox, in a fresh process: the student's answer cells, then one case at a time.

The grader sends this file's source as ``python -I -c``; nothing of the grader is importable here.
The runner connects to ``verify.sock`` in its working folder, where the trusted side
(``grader/steps/verify_channel.py``) listens and accepts one connection, before any student code
runs. Then it answers requests, one at a time, each sent only after the previous reply arrived:

    {"id": i, "exec": source, "name": cell}  ->  {"id": i, "ok": true}     or {"id": i, "error": text}
    {"id": i, "case": {...}}                 ->  {"id": i, "result": {...}} or {"id": i, "error": text}

Nothing here is trusted or secret: the student's code shares this process and can read, patch or
replace all of it, and send what it likes. That is why a case's inputs arrive only when the case
runs, the expected answers never arrive at all, and the grader validates every reply.

Answer cells run as in the notebook: through IPython's input transformations (magics, ``!cmd``)
with a ``get_ipython()`` whose magics only run the code they time or capture (the others change
display, configuration or the outside world, never what a cell defines), and with the
assignment's helper modules (copied into this folder) importable. A Function runs the way torch
runs it: ``.apply`` on leaves that require grad, then its backward called on its own node as the
notebook's checks call it (raw: no summing, no casting), and once more through torch's engine.
Numbers cannot tell a formula from a backward that asks torch's autograd for the answer: that one
gets correct numbers here too, and only the static scan of answer cells can flag it.
"""
import json
import os
import socket
import sys

import torch

SOCKET = "verify.sock"
RUNS_CODE = {"time", "timeit", "capture", "prun"}  # magics whose argument or body is code to run


class Shell:
    """What transformed cells call on ``get_ipython()``: timing and capture magics run their code."""

    def __init__(self, namespace):
        self.namespace = namespace

    def run_line_magic(self, name, line):
        if name.lstrip("%") in RUNS_CODE and line.strip():
            run_cell(line, "<magic>", self.namespace)

    def run_cell_magic(self, name, line, cell):
        if name in RUNS_CODE:
            run_cell(cell, "<magic>", self.namespace)

    def system(self, command):
        return None

    def getoutput(self, command):
        return []


def run_cell(source, name, namespace):
    from IPython.core.inputtransformer2 import TransformerManager
    code = TransformerManager().transform_cell(source)
    exec(compile(code, f"<answer {name}>", "exec"), namespace)


def encode(tensor):
    """A tensor as numbers: its dtype name, shape and flat values."""
    tensor = tensor.detach()
    return {"dtype": str(tensor.dtype).replace("torch.", ""), "shape": list(tensor.shape),
            "values": tensor.reshape(-1).tolist()}


def encode_or_none(value):
    return encode(value) if isinstance(value, torch.Tensor) else None


def decode(number):
    return torch.tensor(number["values"], dtype=getattr(torch, number["dtype"])).reshape(number["shape"])


def functions_in(output):
    """Names of the custom Functions whose nodes built ``output``."""
    names, seen, stack = set(), set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "_forward_cls"):
            names.add(node._forward_cls.__name__)
        stack.extend(child for child, _ in node.next_functions)
    return sorted(names)


def run_function(case, namespace):
    """The student's Function on fresh leaves: forward, backward on its node, backward through torch."""
    function = namespace[case["target"]]

    def leaves():
        return [decode(x).requires_grad_(grad) for x, grad in zip(case["inputs"], case["grad"])]

    out = function.apply(*leaves())
    if type(out.grad_fn) is not function._backward_cls:
        return {"out": encode(out), "own_node": False}
    upstream = decode(case["upstream"])
    kept = upstream.clone()
    returned = function.backward(out.grad_fn, upstream)  # as the notebook's checks call it
    returned = tuple(returned) if isinstance(returned, (tuple, list)) else (returned,)
    result = {"out": encode(out), "own_node": True, "returned": [encode_or_none(g) for g in returned],
              "upstream_changed": not torch.equal(upstream, kept)}
    try:
        inputs = leaves()
        wrt = [x for x in inputs if x.requires_grad]
        upstream = decode(case["upstream"])
        grads = torch.autograd.grad(function.apply(*inputs), wrt, upstream, allow_unused=True)
        result["through_torch"] = [encode_or_none(g) for g in grads]
        result["upstream_changed"] |= not torch.equal(upstream, kept)
    except Exception as error:  # torch refused what backward returned
        result["torch_error"] = describe(error)
    return result


def run_graph(case, namespace):
    """A graph-building function, run with the reference Functions in place of the student's."""
    scope = {"torch": torch, "__name__": "reference"}
    exec(case["substitute"], scope)
    saved = {name: namespace[name] for name in case["names"] if name in namespace}
    namespace.update({name: scope[name] for name in case["names"]})
    try:
        leaves = [decode(x).requires_grad_() for x in case["inputs"]]
        returned = namespace[case["target"]](*leaves)
        nodes = [returned[key] for key in case["nodes"]]
        grads = torch.autograd.grad(returned[case["output"]], leaves + nodes, decode(case["upstream"]),
                                    allow_unused=True)
    finally:  # the student's own Functions back, for the cases after this one
        for name in case["names"]:
            namespace.pop(name)
        namespace.update(saved)

    def made_by(node):
        for name in case["names"]:
            if type(node.grad_fn) is scope[name]._backward_cls:
                return name
        return type(node.grad_fn).__name__

    return {"made_by": [made_by(n) for n in nodes], "values": [encode(n) for n in nodes],
            "leaf_grads": [encode_or_none(g) for g in grads[:len(leaves)]],
            "node_grads": [encode_or_none(g) for g in grads[len(leaves):]]}


def run_model(case, namespace):
    """A model with a ``params`` dict, its parameters set to the case's, differentiated by torch."""
    model = namespace[case["target"]](*case["init"], dtype=getattr(torch, case["dtype"]))
    leaves = []
    for name, value in case["params"]:
        leaves.append(decode(value).requires_grad_())
        model.params[name] = leaves[-1]
    out = getattr(model, case["method"])(*[decode(x) for x in case["inputs"]])
    grads = torch.autograd.grad(out, leaves, decode(case["upstream"]), allow_unused=True)
    return {"out": encode(out), "functions": functions_in(out), "grads": [encode_or_none(g) for g in grads]}


def run_numerical(case, namespace):
    """The student's numerical gradient of a function the grader chose, at a point it chose."""
    function = eval(case["function"], {"torch": torch})
    constants = [decode(c) for c in case["constants"]]
    x = decode(case["x"]).requires_grad_(case["requires_grad"])
    kept = x.detach().clone()
    grad = namespace[case["target"]](lambda v: function(v, *constants), x)
    return {"out": encode(torch.as_tensor(grad)), "x_changed": not torch.equal(x.detach(), kept)}


KINDS = {"function": run_function, "graph": run_graph, "model": run_model, "numerical": run_numerical}


def run_net(case, namespace):
    """A net built and used here, its layers computing as the spec's reference Functions.

    ``references`` (the spec's source) defines a Function for each name in ``layers``, and may
    define a reference net. While the case runs, the student's classes of those names compute as
    the references, their methods swapped on the class objects themselves (however the student's
    code reaches them), and put back afterwards. The net is ``net`` from the student's namespace
    (``source`` "student") or from the references, built with ``init``; each of ``params`` is
    copied into its parameter in place (layer objects holding the same tensors see it). Then, in
    this order, as the case asks: ``train``, the student's training function on training data;
    ``loss``, the net's loss on inputs and the gradients of its parameters for an upstream
    gradient (and with ``gradient``, what the net's own ``gradient()`` returns when called a
    second time); ``predict``, the class the net predicts for each input sent (labels to score them
    never come here).
    """
    scope = {"torch": torch, "__name__": "reference"}
    exec(case["references"], scope)
    methods, missing, swapped = ("forward", "setup_context", "backward", "vjp", "jvp"), object(), []
    for name in case["layers"]:
        student, reference = namespace.get(name), scope[name]
        if isinstance(student, type) and issubclass(student, torch.autograd.Function):
            swapped.append((student, {m: student.__dict__.get(m, missing) for m in methods}))
            for method in methods:
                if method in reference.__dict__:
                    setattr(student, method, reference.__dict__[method])
                elif method in student.__dict__:
                    delattr(student, method)
    try:
        owner = namespace if case["source"] == "student" else scope
        net = owner[case["net"]](*case["init"], dtype=getattr(torch, case["dtype"]),
                                 generator=torch.Generator().manual_seed(case["seed"]))
        with torch.no_grad():
            for name, value in case.get("params", []):
                net.params[name].copy_(decode(value))
        result = {}
        if "train" in case:
            torch.set_num_threads(1)  # small matrices: threads cost more than they bring (0.6 s, not 6, loaded)
            train = case["train"]
            namespace[train["target"]](net, *[decode(x) for x in train["inputs"]], **train["options"])
        if "loss" in case:
            params = list(net.params.values())
            out = net.loss(*[decode(x) for x in case["loss"]["inputs"]])
            grads = torch.autograd.grad(out, params, decode(case["loss"]["upstream"]), allow_unused=True)
            result.update(out=encode(out), functions=functions_in(out), grads=[encode_or_none(g) for g in grads])
            if case["loss"].get("gradient"):  # the net's own gradient(), called twice: the second result
                net.gradient(*[decode(x) for x in case["loss"]["inputs"]])
                again = net.gradient(*[decode(x) for x in case["loss"]["inputs"]])
                result["gradient"] = [encode_or_none(again.get(name)) for name in net.params]
        if "predict" in case:
            with torch.no_grad():
                result["predicted"] = encode(net.predict(decode(case["predict"])).argmax(dim=1))
        return result
    finally:  # the student's own layers back
        for student, saved in swapped:
            for method, value in saved.items():
                if value is not missing:
                    setattr(student, method, value)
                elif method in student.__dict__:
                    delattr(student, method)


KINDS["net"] = run_net


def describe(error):
    return f"{type(error).__name__}: {str(error)[:300]}"


def answer(request, namespace):
    """The reply line to one request."""
    try:
        if "exec" in request:
            run_cell(request["exec"], request["name"], namespace)
            reply = {"ok": True}
        else:
            reply = {"result": KINDS[request["case"]["kind"]](request["case"], namespace)}
        return json.dumps({"id": request["id"], **reply}) + "\n"
    except BaseException as error:  # the student's code failed (or exited): report the kind, go on
        return json.dumps({"id": request["id"], "error": describe(error)}) + "\n"


def main():
    channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    channel.connect(SOCKET)
    sys.path.insert(0, os.getcwd())  # the assignment's helper modules, as beside the notebook
    namespace = {"__name__": "__main__", "display": lambda *args, **kwargs: None}
    namespace["get_ipython"] = lambda shell=Shell(namespace): shell
    exec("import torch\nimport torch.nn as nn", namespace)  # the spec's preamble may add more
    for line in channel.makefile("rb"):
        channel.sendall(answer(json.loads(line), namespace).encode())


if __name__ == "__main__":
    main()
