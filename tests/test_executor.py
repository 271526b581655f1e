"""The hardened executor on its own, in the sandbox and without it."""
import json
import shutil

import nbformat
import pytest

from grader.demo import simulate
from grader.course import Course
from grader.markers import KERNEL_DIED, NOT_RUN
from grader.outcome import Ending
from grader.nbgrader_plugins.execute import OUTPUT_FLOOD, GradingExecute

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


def run_cells(tmp_path, sources, sandbox, **traits):
    """Execute a hand-built notebook of ``sources`` with GradingExecute; (cells, executor)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    executor = GradingExecute(timeout=60, sandbox=sandbox, **traits)
    nb, _ = executor.preprocess(nb, {"metadata": {"path": str(tmp_path)},
                                     "nbgrader": {"student": "s", "notebook": "nb"}})
    return nb.cells, executor


FLOOD = "from IPython.display import display\nfor _ in range(1500):\n    display('x' * 2**20)"


def test_an_output_flood_is_capped_as_it_streams_and_stops_the_kernel(tmp_path):
    """1,500 displays of 1 MiB: the worker keeps at most the cell's cap, the kernel is stopped
    past the flood limit, and the notebook ends as a dead kernel (the cells after it not run)."""
    cells, executor = run_cells(tmp_path, ["print('before')", FLOOD, "print('after')"], True,
                                endings_directory=str(tmp_path / "endings"))
    flood = cells[1].outputs
    kept = [o for o in flood if o.output_type == "display_data"]
    assert 0 < len(kept) <= executor.max_cell_output // 2**20
    assert sum(len(o.data["text/plain"]) for o in kept) <= executor.max_cell_output
    assert flood[-1].ename == OUTPUT_FLOOD
    assert "not kept: past the grader's output limit" in flood[-2].text
    assert executor.max_output_flood < executor._received < 1500 * 2**20  # stopped before the end
    assert [o.ename for o in cells[2].outputs] == [NOT_RUN]
    assert GradingExecute.read_endings(tmp_path / "endings" / "s") == [Ending.KERNEL_DIED]


def test_outputs_within_the_caps_are_kept_whole(tmp_path):
    cells, _ = run_cells(tmp_path, ["for i in range(3):\n    print(i)", "'x' * 1000"], sandbox=False)
    assert "".join(o.text for o in cells[0].outputs) == "0\n1\n2\n"
    assert cells[1].outputs[0].data["text/plain"] == repr("x" * 1000)


HIDDEN_TEST = ("assert x == 2  # VISIBLE_3c9e\n### BEGIN HIDDEN TESTS\n"
               "assert x + 1 == 3, 'SECRET_7f3a'  # SECRET_7f3a\nx + 40\n### END HIDDEN TESTS")
# A student cell after the hidden tests: every place IPython keeps what it ran, searched for a
# marker it spells in two parts (so that its own source does not hold it).
SEARCH = """
import json, linecache
ip = get_ipython()
def places(marker):
    found = []
    for name, value in [("In", In), ("_ih", _ih), ("Out", Out),
                        *((n, v) for n, v in globals().items() if n.startswith("_i"))]:
        if marker in repr(value):
            found.append(name)
    if any(marker in "".join(entry[2]) for entry in linecache.cache.values() if len(entry) > 2):
        found.append("linecache")
    history = ip.history_manager
    for name in ("input_hist_raw", "input_hist_parsed", "output_hist", "exceptions"):
        if marker in repr(getattr(history, name, None)):
            found.append("history_manager." + name)
    try:
        if marker in repr(list(history.get_range(raw=True, output=True))):
            found.append("history_manager.get_range")
    except Exception:
        pass
    return sorted(set(found))
print(json.dumps({"secret": places("SECRET" + "_7f3a"), "visible": places("VISIBLE" + "_3c9e")}))
"""


@pytest.mark.parametrize("sandbox", [True, False], ids=["sandbox", "no-sandbox"])
def test_a_later_cell_finds_no_hidden_test_in_the_kernels_history(tmp_path, sandbox):
    cells, _ = run_cells(tmp_path, ["x = 2", HIDDEN_TEST, SEARCH], sandbox)
    assert not errors_of(dict(enumerate(cells))).get(1)
    found = json.loads(cells[2].outputs[-1].text.strip().splitlines()[-1])
    assert found["secret"] == []
    assert {"In", "_ih", "linecache"} <= set(found["visible"])  # the search does find what is kept


def test_a_display_update_cannot_grow_a_kept_output_past_the_cap(tmp_path):
    update = ("h = display('small', display_id=True)\n"
              "for _ in range(8):\n    h.update('x' * 2**20)")
    cells, executor = run_cells(tmp_path, [update], sandbox=False, max_cell_output=2 * 2**20)
    shown = [o for o in cells[0].outputs if o.output_type == "display_data"]
    assert len(shown) == 1 and shown[0].data["text/plain"] == repr("x" * 2**20)  # updated once, then capped
    assert "not kept: past the grader's output limit" in cells[0].outputs[-1].text
