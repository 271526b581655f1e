"""The release is current, the solutions pass their own tests, the blanks fail every test, and no
module of a release is an oracle (tests/oracle_probe.py)."""
import filecmp
import json
import os
import subprocess
import sys

import nbformat
import pytest

from grader.course import REPO_ROOT, Course

pytestmark = pytest.mark.slow

COURSE = Course(REPO_ROOT)
SOLUTION_NOTEBOOKS = sorted(COURSE.solutions.glob("*/*.ipynb"))


@pytest.mark.parametrize("assignment", COURSE.assignments())
def test_release_is_regenerated_from_solutions(released_course, assignment):
    fresh, committed = released_course.release / assignment, COURSE.release / assignment
    names = sorted(p.name for p in fresh.iterdir())
    assert names == sorted(p.name for p in committed.iterdir()), "run `make release`"
    for name in names:
        assert filecmp.cmp(fresh / name, committed / name, shallow=False), \
            f"notebooks/{assignment}/{name} is stale or hand-edited: run `make release`"


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.parent.name)
def test_solution_passes_its_tests(path):
    result = COURSE.nbgrader("validate", str(path), check=False)
    assert "Success! Your notebook passes all the tests." in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.parent.name)
def test_release_fails_every_test(path):
    release = COURSE.release / path.parent.name / path.name
    result = COURSE.nbgrader("validate", "--invert", str(release), check=False)
    assert "Success! The notebook does not pass any tests." in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.parent.name)
def test_solution_is_executed_in_order_and_seeded(path):
    nb = nbformat.read(path, as_version=4)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), "run `make solutions` (top to bottom)"
    assert any("manual_seed" in c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.parent.name)
def test_release_has_no_hidden_tests_or_solutions(path):
    text = (COURSE.release / path.parent.name / path.name).read_text()
    assert "HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text


PROBE = REPO_ROOT / "tests" / "oracle_probe.py"


def probe(folder, module):
    """{Function: verdict} for what ``module`` (imported from ``folder`` in a fresh process) exposes."""
    result = subprocess.run([sys.executable, str(PROBE), str(folder), module], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "MPLBACKEND": "Agg"}, cwd=folder)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])["functions"]


@pytest.mark.parametrize("module", sorted(COURSE.release.glob("*/*.py")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_module_of_a_release_exposes_an_autograd_backed_function(module):
    """No oracle in the release: nothing a student can import computes a graded gradient."""
    exposed = probe(module.parent, module.stem)
    assert all(verdict == "formula" for verdict in exposed.values()), exposed


ORACLES = '''
import torch

def reference_node(name, op):  # a factory, as the course's helper once had
    def forward(ctx, *inputs):
        ctx.save_for_backward(*inputs)
        return op(*inputs)

    def backward(ctx, grad_output):
        with torch.enable_grad():
            inputs = [x.detach().requires_grad_() for x in ctx.saved_tensors]
            return torch.autograd.grad(op(*inputs), inputs, grad_output)
    return type(name, (torch.autograd.Function,), {"forward": staticmethod(forward),
                                                    "backward": staticmethod(backward)})

class Honest(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return g * y, g * x

class _Kernel(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return getattr(torch.ops.aten, "sigmoid_" + "backward")(g, *ctx.saved_tensors)

class _Vjp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        from torch import func as f
        return f.vjp(torch.sin, *ctx.saved_tensors)[1](g)[0]

TABLE = {"nodes": [_Kernel, _Vjp]}
'''


def test_the_probe_finds_oracles_by_what_their_backward_does(tmp_path):
    """The release test can fail: a factory, a table and a private class, each seen by behaviour."""
    (tmp_path / "helpers.py").write_text(ORACLES)
    exposed = probe(tmp_path, "helpers")
    assert exposed == {"helpers.Honest": "formula", "helpers._Kernel": "derivative kernel",
                       "helpers._Vjp": "autograd", "helpers.Mul": "autograd"}


BOOK_PREDICTIONS = {  # the book's numbers, as a student who predicts right would type them
    "apple_predicted": {"price": 1.1, "apple": 2.2, "num": 110, "ctax": 200},
    "fruit_predicted": {"price": 1.1, "apple_price": 1.1, "tangerine_price": 1.1, "ctax": 650, "apple": 2.2,
                        "num_apple": 110, "tangerine": 3.3, "num_tangerine": 165},
}


def test_a1_predict_and_trace_cells_run_in_the_release(tmp_path):
    """The release's ungraded cells "predict, then check" and "watch the backward pass" run once the
    blanks are filled in, and take the book's numbers as right."""
    import shutil

    from nbclient import NotebookClient

    shutil.copytree(COURSE.release / "a1_backprop", tmp_path, dirs_exist_ok=True)
    path = tmp_path / "backprop.ipynb"
    nb = nbformat.read(path, as_version=4)
    solution = nbformat.read(COURSE.solutions / "a1_backprop" / "backprop.ipynb", as_version=4)
    answers = {c.metadata.nbgrader["grade_id"]: c.source for c in solution.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
        for name, numbers in BOOK_PREDICTIONS.items():
            if f"{name} = {{" in cell.source:
                assert "None" in cell.source and str(numbers[next(iter(numbers))]) not in cell.source
                cell.source = f"{name} = {numbers!r}"
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "4 of 4 right" in printed and "8 of 8 right" in printed
    assert "Mul.backward → price | 1.1" in printed
