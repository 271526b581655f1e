"""Shared fixtures: a private copy of the course, so tests never touch the repo's gradebook.

``make test`` runs test files in parallel (pytest-xdist, ``--dist loadfile``: a file's tests and
its module fixtures stay in one process), with two changes (``GroupScheduling``): the files that
share a session fixture are one unit, so it is built once, and units are handed out in the order
of ``SECONDS``, the heaviest first (a unit's seconds are its files' sum), so that the quick
files and nbval's notebooks fill the gaps and both workers end together. (xdist's own
``--dist loadgroup`` cannot do the first: with pytest 9 the group it appends to a test's id is
lost.)
"""
import shutil
from collections import Counter
from pathlib import Path

import pytest
from xdist.scheduler import LoadFileScheduling

from browser_lab import CHROMIUM, CHROMIUM_ARGS
from grader.course import Course


@pytest.fixture(scope="session")
def released_course(tmp_path_factory):
    """A course copy whose assignments are generated into its gradebook (hidden tests stored)."""
    course = Course().copy_to(tmp_path_factory.mktemp("course"))
    for assignment in course.assignments():
        course.nbgrader("generate_assignment", assignment, "--force")
    return course


@pytest.fixture(scope="session")
def a1_generated(tmp_path_factory):
    """copy(dest) -> a Course at ``dest`` with a1_backprop generated into its SQLite gradebook.

    Each copy is of one course generated once per test process: `nbgrader generate_assignment`
    and the gradebook's creation (alembic) cost a few seconds of CPU each time.
    """
    template = Course().copy_to(tmp_path_factory.mktemp("a1-generated") / "course")
    template.nbgrader("generate_assignment", "a1_backprop", "--force")

    def copy(dest):
        shutil.copytree(template.root, dest)
        return Course(dest)
    return copy


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium through Playwright (never a downloaded browser), one per test file."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: the browser tests need Debian's Chromium. "
                    "Run `make system-packages` (as root), which CI does before `make test`.")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# Files whose tests share a session fixture (its name): one unit, one process.
SHARED = {name: "released_course" for name in
          ("test_release.py", "test_a1_backprop.py", "test_a2_layers.py", "test_a3_two_layer_net.py")}
# Wall seconds of the heaviest files in `make test` (2 workers, 2 cores; measured 2026-12-05), to
# hand the heaviest out first. A file not listed is quick; it goes after these, in collection order.
SECONDS = {"test_hub_browser.py": 300, "test_hub_postgres.py": 120, "test_hostile_class.py": 110,
           "test_batch_grading.py": 90, "test_dask.py": 90, "test_browser.py": 80, "test_a1_backprop.py": 75,
           "test_hostile_capabilities.py": 70, "test_replay_blas.py": 65, "test_a3_two_layer_net.py": 60,
           "test_honest_idioms.py": 60, "test_formgrader_inert.py": 50, "test_release.py": 50,
           "test_sandbox.py": 50, "test_verify.py": 40, "test_a2_layers.py": 35, "test_capabilities.py": 35,
           "test_runtime.py": 35, "test_similarity.py": 30, "test_collect.py": 30,
           "test_exchange_permissions.py": 25, "test_executor.py": 20, "test_score.py": 15,
           "test_feedback_figures.py": 12}


def _unit(path):
    """The scheduling unit of the test file at ``path``: its shared fixture or its own name."""
    return SHARED.get(Path(path).name, Path(path).name)


class GroupScheduling(LoadFileScheduling):
    def _split_scope(self, nodeid):
        return _unit(super()._split_scope(nodeid))


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") == "loadfile":
        return GroupScheduling(config, log)
    return None


def pytest_collection_modifyitems(items):
    seconds = Counter()
    for name, spent in SECONDS.items():
        seconds[_unit(name)] += spent
    items.sort(key=lambda item: -seconds[_unit(item.path)])  # stable: a unit's files stay in order
