"""Where grading runs: the pool contains a dying or stalling worker; a run survives a worker killed mid-run.

The pool's tests use plain functions (no course, no sandbox). The batch test grades three a1
students on the local runtime without a sandbox, kills (SIGKILL) the worker process holding one
chosen student while it grades them, and checks the run still ends with a complete grades.csv:
that student for manual review with the reason, the others with their exact scores and feedback.
"""
import os
import signal
import threading
import time

import nbformat
import pytest

from grader import batch
from grader.course import Course, GradeOptions
from grader.demo import simulate
from grader.runtime import runtime_for
from grader.runtime.local import LocalRuntime
from grader.runtime.pool import WorkerLost, WorkerPool

A, NB = "a1_backprop", "backprop"
WAIT = 300  # seconds any wait in these tests may take before it fails (a bound, not a measure)


def held(pool, label):
    """The pid of the worker holding ``label``'s task, once it holds it."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        pid = pool.holding().get(label)
        if pid:
            return pid
        time.sleep(0.02)
    raise TimeoutError(f"no worker picked up {label}")


def test_a_killed_worker_costs_only_its_task_and_is_replaced():
    with WorkerPool(2) as pool:
        victim = pool.submit(time.sleep, WAIT, label="victim")
        pid = held(pool, "victim")
        others = [pool.submit(pow, 2, n) for n in range(6)]
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerLost, match="was killed by SIGKILL"):
            victim.result(WAIT)
        assert [f.result(WAIT) for f in others] == [2 ** n for n in range(6)]
        after = pool.submit(os.getpid)
        assert after.result(WAIT) != pid  # a fresh worker took its place


def test_a_stalled_worker_is_stopped_and_its_task_says_so():
    with WorkerPool(1, stall_after=1) as pool:
        stalled = pool.submit(time.sleep, WAIT)
        with pytest.raises(WorkerLost, match="stalled"):
            stalled.result(WAIT)
        assert pool.submit(pow, 3, 2).result(WAIT) == 9


def test_a_task_that_raises_fails_alone():
    with WorkerPool(1) as pool:
        failing = pool.submit(int, "not a number")
        with pytest.raises(RuntimeError, match="invalid literal"):
            failing.result(WAIT)
        assert pool.submit(abs, -4).result(WAIT) == 4


def test_options_choose_the_runtime():
    from grader.runtime.distributed import DaskRuntime
    assert type(runtime_for(Course(), GradeOptions())) is LocalRuntime
    assert type(runtime_for(Course(), GradeOptions(scheduler="tcp://127.0.0.1:1"))) is DaskRuntime


@pytest.mark.slow
def test_a_worker_killed_mid_run_costs_only_its_student(tmp_path, a1_generated):
    course = a1_generated(tmp_path / "course")
    correct = simulate.solution_answers(Course().solutions / A / f"{NB}.ipynb")
    wrong = dict(correct, mul=simulate.replace_line(correct["mul"], "return grad_output * y, grad_output * x",
                                                    simulate.SOURCE_MUL_BACKWARD))
    for student, answers in {"a_honest": correct, "b_killed": correct, "c_wrong": wrong}.items():
        folder = course.submission(student, A)
        folder.mkdir(parents=True)
        nbformat.write(simulate.build_submission(course.release / A / f"{NB}.ipynb", answers), folder / f"{NB}.ipynb")
    options = GradeOptions(jobs=2, cell_timeout=60, notebook_timeout=300, verify_timeout=60, sandboxed=False)
    runtime = LocalRuntime(course, options)
    run = {}
    grading = threading.Thread(target=lambda: run.setdefault("result", batch.grade(course, A, options, runtime)))
    grading.start()
    deadline = time.monotonic() + WAIT
    while runtime.pool is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(held(runtime.pool, "b_killed"), signal.SIGKILL)
    grading.join(WAIT)
    assert "result" in run, "the run did not end after its worker was killed"
    rows = {row["student"]: row for row in run["result"].rows}
    assert sorted(rows) == ["a_honest", "b_killed", "c_wrong"]
    assert (rows["a_honest"]["total"], rows["a_honest"]["flags"]) == (12, "")
    assert (rows["c_wrong"]["total"], rows["c_wrong"]["test_mul"], rows["c_wrong"]["flags"]) == (9, 0, "")
    assert rows["b_killed"]["total"] is None and rows["b_killed"]["flags"] == "manual_review"
    assert "was killed by SIGKILL" in rows["b_killed"]["notes"]
    with open(run["result"].csv, encoding="utf-8") as f:
        assert len(f.read().strip().splitlines()) == 4  # header and one row each
    for student in ("a_honest", "c_wrong"):
        assert (course.feedback / student / A / f"{NB}.html").exists()


# --- private APIs of other libraries, each checked where the installed version can break it ----

@pytest.mark.parametrize("name", sorted(__import__("grader.sandbox.kernel", fromlist=["PRIVATE_API"]).PRIVATE_API))
def test_jupyter_clients_private_methods_are_still_what_the_sandboxed_kernel_relies_on(name):
    import inspect
    from grader.sandbox.kernel import PRIVATE_API
    library, parameters, caller = PRIVATE_API[name]
    method = getattr(library, name)
    assert tuple(inspect.signature(method).parameters) == parameters
    if caller:
        assert f"self.{name}(" in inspect.getsource(getattr(library, caller))


def test_ipythons_compiler_still_records_each_cells_number():
    """``execute.FORGET_HIDDEN`` finds the hidden part's linecache entry by its number."""
    import linecache
    from IPython.core.compilerop import CachingCompiler
    compiler = CachingCompiler()
    name = compiler.cache("hidden = 1\n", 7)
    assert compiler._filename_map[name] == 7 and name in linecache.cache
    linecache.cache.pop(name)


def test_nbconverts_exporter_still_keeps_the_notebooks_metadata_where_feedback_reads_it():
    """grader/steps/feedback.py's exporter reads ``_nb_metadata`` and calls ``_init_resources``."""
    import inspect
    from nbconvert import HTMLExporter
    from nbconvert.exporters.exporter import Exporter
    exporter = HTMLExporter()
    assert exporter._nb_metadata == {}
    assert "self._nb_metadata[" in inspect.getsource(Exporter.from_notebook_node)
    assert tuple(inspect.signature(HTMLExporter._init_resources).parameters) == ("self", "resources")
