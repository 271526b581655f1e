"""Verify: each graded gradient checked again outside the student's kernel. The verified result is the score.

The notebook's tests run in the student's kernel after the student's code, so a student can
monkeypatch what they call. Here the trusted process (which never runs student code) picks fresh
inputs and upstream gradients and computes the expected answers with torch's own autograd
(``grader/specs/cases.py``); a fresh sandboxed process (``grader/inside/verify_runner.py``) runs
only the student's answer cells and returns numbers; the trusted process compares. An assignment
is verified when ``grader/specs/<name>.py`` exists; its ``TESTS`` maps grade cell ids to cases.
"""
import importlib
import json
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import torch

from ..outcome import Verdict
from ..sandbox.cgroups import Cgroups
from ..sandbox.forkserver import JOB_ENV, ForkedProcess, ForkServer
from ..sandbox.launcher import Limits

RUNNER = (Path(__file__).resolve().parent.parent / "inside" / "verify_runner.py").read_text()


def spec_for(assignment):
    """The assignment's verification spec module, or None when it has none."""
    try:
        return importlib.import_module(f"grader.specs.{assignment}")
    except ModuleNotFoundError:
        return None


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


def verify_notebook(spec, notebook_path, seed, timeout=120, sandboxed=True):
    """Verify one student's notebook against ``spec``; returns {grade id: Verdict}."""
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
    results = _run_in_sandbox({"tag": tag, "steps": steps}, timeout, sandboxed)
    verdicts = {}
    for grade_id in spec.TESTS:
        if grade_id not in order:
            continue
        problem = ""
        for case_id in (c for c in expected if c.split("#")[0] == grade_id):
            problem = (_compare(results[case_id], expected[case_id]) if case_id in results
                       else "the verifier stopped before this check (crash, exit or time-out)")
            if problem:
                break
        verdicts[grade_id] = Verdict(not problem, problem)
    return verdicts


def _run_in_sandbox(job, timeout, sandboxed):
    """Results by case id from one fresh runner process."""
    text = _run_forked(job, timeout) if sandboxed else _run_unconfined(job, timeout)
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


def _run_forked(job, timeout):
    """The runner as a confined child of the warm sandboxed fork server; its output as text."""
    server = ForkServer.instance()
    uid, folder = server.new_job()
    job_file, results_file = folder / "job.json", folder / "results.jsonl"
    job_file.write_text(json.dumps(job))
    results_file.touch()
    for path in (job_file, results_file):
        shutil.chown(path, uid, uid)
    limits = Limits()
    cgroups = Cgroups(folder.name, limits)
    try:
        pid = server.fork(folder, uid, limits, cgroups, JOB_ENV,
                          program=RUNNER, stdin=str(job_file), stdout=str(results_file))
        process = ForkedProcess(pid)
        if process.wait(timeout) is None:
            process.kill()
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


@dataclass(frozen=True)
class Verification:
    """One student's verdicts, or why none could be had (then a person must look)."""
    verdicts: dict
    error: str = ""


def verify_student(course, assignment, student, options, seed):
    """One student's Verification (the assignment has a spec; ``seed`` is the class's); never raises."""
    verdicts = {}
    try:
        for path in sorted(course.submission(student, assignment).glob("*.ipynb")):
            verdicts.update(verify_notebook(spec_for(assignment), path, seed, timeout=options.verify_timeout,
                                            sandboxed=options.sandboxed))
    except Exception as error:  # anything at all: this student goes to a person, the rest go on
        return Verification({}, f"{type(error).__name__}: {str(error)[:300]}")
    return Verification(verdicts)

