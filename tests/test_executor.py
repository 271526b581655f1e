"""The hardened executor on its own, in the sandbox and without it."""
import shutil

import pytest

from grader.demo import simulate
from grader.course import Course
from grader.markers import KERNEL_DIED, NOT_RUN
from grader.steps.execute import GradingExecute

pytestmark = pytest.mark.sandbox

A, NB = "a1_backprop", "backprop"
COURSE = Course()


def executed(tmp_path, answers, **traits):
    for helper in (COURSE.release / A).glob("*.py"):
        shutil.copy(helper, tmp_path)
    nb = simulate.build_submission(COURSE.release / A / f"{NB}.ipynb", answers)
    executor = GradingExecute(timeout=30, **traits)
    nb, _ = executor.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    return {c.metadata.get("nbgrader", {}).get("grade_id", i): c for i, c in enumerate(nb.cells)
            if c.cell_type == "code"}


def errors_of(cells):
    """{grade id or cell index: the names of the errors the cell shows}."""
    return {key: [o.get("ename") for o in cell.outputs if o.output_type == "error"] for key, cell in cells.items()}


def run(tmp_path, answers, **traits):
    return errors_of(executed(tmp_path, answers, **traits))


@pytest.mark.parametrize("sandbox", [True, False], ids=["sandbox", "no-sandbox"])
def test_answers_run_without_errors(tmp_path, sandbox):
    answers = simulate.solution_answers(COURSE.solutions / A / f"{NB}.ipynb")
    errors = run(tmp_path, answers, sandbox=sandbox)
    assert not any(errors.values()), {k: v for k, v in errors.items() if v}


@pytest.mark.parametrize("sandbox", [True, False], ids=["sandbox", "no-sandbox"])
def test_a_dead_kernel_costs_only_the_cells_after_it(tmp_path, sandbox):
    answers = simulate.solution_answers(COURSE.solutions / A / f"{NB}.ipynb")
    cells = executed(tmp_path, dict(answers, mul="import os\nos._exit(1)"), sandbox=sandbox)
    errors = errors_of(cells)
    assert errors["test_square"] == [] and errors["test_add"] == []
    assert errors["mul"] == [KERNEL_DIED] and errors["test_mul"] == [NOT_RUN]
    # the same page every time: the dying cell shows no count, whether or not it was announced
    assert cells["mul"].execution_count is None and cells["test_add"].execution_count is not None


def test_a_sandboxed_kernel_client_starts_no_heartbeat():
    from grader.sandbox.kernel import SandboxedKernelClient, SandboxedKernelManager
    assert SandboxedKernelManager.class_traits()["client_factory"].default() is SandboxedKernelClient
