"""Runs inside the sandbox, in a fresh process: the student's answer cells, then the gradient cases.

The grader sends this file's source as ``python -I -c`` and a job on stdin; nothing of the grader
is importable here. Results go to the original stdout as lines that start with the job's tag;
the student's own prints go nowhere. Only numbers come back: the trusted grader compares them.
Each case calls the student's ``backward`` directly with a plain context (so a Function that
borrows torch's autograd instead of implementing backward gets no gradient), or, for a graph
exercise, runs autograd through the student's graph and names the nodes it is built from.
"""
import io
import json
import os
import sys


def main():
    job = json.loads(sys.stdin.read())
    results = os.fdopen(os.dup(1), "w", buffering=1)
    sink = io.StringIO()
    sys.stdout = sys.stderr = sink
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)

    import torch
    namespace = {"__name__": "__main__"}
    exec("import torch\nimport torch.nn as nn", namespace)  # the spec's PREAMBLE may add more

    def send(message):
        results.write(job["tag"] + json.dumps(message) + "\n")

    def numbers(value):
        return value.detach().to(torch.float64).tolist() if isinstance(value, torch.Tensor) else None

    class Context:
        """What a Function's forward and backward may use of ctx, without autograd."""
        def __init__(self, count):
            self.saved_tensors = ()
            self.needs_input_grad = (True,) * count

        def save_for_backward(self, *tensors):
            self.saved_tensors = tensors

        def mark_non_differentiable(self, *args):
            pass

        def set_materialize_grads(self, value):
            pass

    def run_function(case):
        function = namespace[case["target"]]
        inputs = [torch.tensor(v, dtype=getattr(torch, d)) for v, d in zip(case["inputs"], case["dtypes"])]
        upstream = torch.tensor(case["upstream"], dtype=torch.float64)
        kept = upstream.clone()
        ctx = Context(len(inputs))
        out = function.forward(ctx, *inputs)
        grads = function.backward(ctx, upstream)
        grads = grads if isinstance(grads, tuple) else (grads,)
        return {"out": numbers(out), "grads": [numbers(g) for g in grads],
                "upstream_changed": not torch.equal(upstream, kept)}

    def run_graph(case):
        leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in case["inputs"]]
        returned = namespace[case["target"]](*leaves)
        out = returned[case["output"]]
        grads = torch.autograd.grad(out, leaves, torch.tensor(case["upstream"], dtype=torch.float64),
                                    allow_unused=True)
        nodes, stack, seen = [], [out.grad_fn], set()
        while stack:
            node = stack.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            if type(node).__name__ != "AccumulateGrad":
                nodes.append(type(node).__name__)
            stack.extend(n for n, _ in node.next_functions)
        return {"out": numbers(out), "grads": [numbers(g) for g in grads], "nodes": sorted(nodes)}

    for step in job["steps"]:
        try:
            if "exec" in step:
                exec(compile(step["exec"], f"<answer {step['id']}>", "exec"), namespace)
                continue
            runner = run_graph if step["kind"] == "graph" else run_function
            send({"id": step["id"], **runner(step)})
        except BaseException as error:  # the student's code failed: report the kind, go on
            send({"id": step["id"], "error": f"{type(error).__name__}: {str(error)[:300]}"})
    send({"done": True})


if __name__ == "__main__":
    main()
