"""The release is current, the solutions pass their own tests, and the blanks fail every test."""
import filecmp

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
