"""Verify: each graded gradient checked again outside the student's kernel. The verified result is the score.

The notebook's tests run in the student's kernel after the student's code, so a student can
monkeypatch what they call. Here the trusted process (which never runs student code) picks fresh
inputs and upstream gradients and computes the expected answers with torch's own autograd; a
fresh sandboxed process (``verify_runner``) runs only the student's answer cells and returns
numbers; the trusted process compares. An assignment is verified when ``grader/specs/<name>.py``
exists; its ``TESTS`` maps grade cell ids to cases built with ``function_case``/``graph_case``.
"""
import importlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import torch

from . import sandbox, warm

RUNNER = (Path(__file__).parent / "verify_runner.py").read_text()


@dataclass
class Verdict:
    """One grade cell's verified outcome for one student."""
    passed: bool
    reason: str = ""


@dataclass
class StudentVerification:
    verdicts: dict = field(default_factory=dict)  # grade cell id -> Verdict


def spec_for(assignment):
    """The assignment's verification spec module, or None when it has none."""
    try:
        return importlib.import_module(f"grader.specs.{assignment}")
    except ModuleNotFoundError:
        return None


# --- building cases (trusted side) -----------------------------------------------------------

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


def _compare(result, expected):
    """'' if the student's numbers match the expected ones, else what is wrong."""
    if "error" in result:
        return f"the student's code raised {result['error']}"
    try:
        out = torch.tensor(result["out"], dtype=torch.float64)
        if out.shape != expected["out"].shape or not torch.allclose(out, expected["out"]):
            return "forward values differ"
        if "nodes" in expected and set(result["nodes"]) != expected["nodes"]:
            return f"graph built from {sorted(set(result['nodes']))}, expected {sorted(expected['nodes'])}"
        if len(result["grads"]) != len(expected["grads"]):
            return f"{len(result['grads'])} gradients returned for {len(expected['grads'])} inputs"
        for number, (got, want) in enumerate(zip(result["grads"], expected["grads"])):
            if want is None:  # an input without a gradient (labels): whatever backward returns
                continue
            if got is None:
                return f"no gradient for input {number}"
            got = torch.tensor(got, dtype=torch.float64)
            if got.shape != want.shape and not expected.get("exact_shapes"):
                got = got.sum_to_size(want.shape) if got.dim() >= want.dim() else got  # as autograd does
            if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-6, atol=1e-8):
                return f"wrong gradient for input {number}"
        if result.get("upstream_changed"):
            return "backward changed grad_output in place"
    except (TypeError, ValueError, RuntimeError) as error:
        return f"malformed result: {error}"
    return ""


# --- running (untrusted side in the sandbox) -------------------------------------------------

def _answer_cells(notebook_path):
    nb = nbformat.read(notebook_path, as_version=4)
    order, answers = [], {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            answers[meta["grade_id"]] = cell.source
        if meta.get("grade_id"):
            order.append(meta["grade_id"])
    return order, answers


def verify_notebook(spec, notebook_path, seed, timeout=120, sandboxed=True, slot=1):
    """Verify one student's notebook against ``spec``; returns StudentVerification."""
    order, answers = _answer_cells(notebook_path)
    generator = torch.Generator().manual_seed(seed)
    steps, expected, done = [{"exec": getattr(spec, "PREAMBLE", ""), "id": "preamble"}], {}, set()
    for position, grade_id in enumerate(order):
        if grade_id in answers or grade_id not in spec.TESTS:
            continue
        for earlier in order[:position]:
            if earlier in answers and earlier not in done:
                steps.append({"exec": answers[earlier], "id": earlier})
                done.add(earlier)
        for number, build in enumerate(spec.TESTS[grade_id]):
            case, want = build(generator)
            case_id = f"{grade_id}#{number}"
            steps.append({**case, "id": case_id})
            expected[case_id] = want
    tag = "@@" + secrets.token_hex(8) + "@@"
    results = _run_in_sandbox({"tag": tag, "steps": steps}, timeout, sandboxed, slot)
    outcome = StudentVerification()
    for grade_id in spec.TESTS:
        if grade_id not in order:
            continue
        problem = ""
        for case_id in (c for c in expected if c.split("#")[0] == grade_id):
            problem = (_compare(results[case_id], expected[case_id]) if case_id in results
                       else "the verifier stopped before this check (crash, exit or time-out)")
            if problem:
                break
        outcome.verdicts[grade_id] = Verdict(not problem, problem)
    return outcome


def _run_in_sandbox(job, timeout, sandboxed, slot):
    """Results by case id from one fresh runner process."""
    text = _run_forked(job, timeout, slot) if sandboxed else _run_unconfined(job, timeout)
    results = {}
    for line in text.splitlines():
        if line.startswith(job["tag"]):
            try:
                message = json.loads(line[len(job["tag"]):])
            except json.JSONDecodeError:
                continue
            if isinstance(message, dict) and "id" in message and message["id"] not in results:
                results[message["id"]] = message
    return results


def _run_forked(job, timeout, slot):
    """The runner as a confined child of the warm sandboxed forkserver; its output as text."""
    server = warm.ForkServer.instance()
    uid = sandbox.sandbox_uid(slot)
    folder = server.run_dir(uid)
    job_file, results_file = folder / "job.json", folder / "results.jsonl"
    job_file.write_text(json.dumps(job))
    results_file.touch()
    for path in (job_file, results_file):
        os.chown(path, uid, uid)
    cgroups = sandbox.Cgroups(folder.name, 4096, 64)
    try:
        pid = server.fork(folder, uid, sandbox.rlimits(), cgroups.procs_files(), warm.JOB_ENV,
                          program=RUNNER, stdin=str(job_file), stdout=str(results_file))
        if warm.ForkedProcess(pid).wait(timeout) is None:
            try:
                os.killpg(pid, 9)
            except ProcessLookupError:
                pass
        return results_file.read_text(errors="replace")
    finally:
        cgroups.remove()
        shutil.rmtree(folder, ignore_errors=True)


def _run_unconfined(job, timeout):
    """The runner as a plain subprocess (grading with --no-sandbox); its output as text."""
    process = subprocess.Popen([sys.executable, "-I", "-c", RUNNER], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        stdout, _ = process.communicate(json.dumps(job).encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, _ = process.communicate()
    return stdout.decode("utf-8", "replace")


def verify_students(course, assignment, students, jobs=2, sandboxed=True, seed=None, timeout=30):
    """{student: StudentVerification} for the assignment's repaired submissions (empty: no spec)."""
    spec = spec_for(assignment)
    if spec is None:
        return {}
    seed = secrets.randbits(31) if seed is None else seed

    def one(slot, student):
        outcome = StudentVerification()
        for path in sorted((course.submitted / student / assignment).glob("*.ipynb")):
            outcome.verdicts.update(verify_notebook(spec, path, seed, timeout=timeout,
                                                    sandboxed=sandboxed, slot=slot).verdicts)
        return student, outcome

    jobs = max(1, jobs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(pool.map(one, [1 + i % jobs for i in range(len(students))], students))
