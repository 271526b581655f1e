"""Shared fixtures: a private copy of the course, so tests never touch the repo's gradebook.

``make test`` runs test files in parallel (pytest-xdist, ``--dist loadgroup``: each file is one
group, so its tests and module fixtures stay in one process; files that share a session fixture
are one group, so it is built once). Groups are handed out in the order of ``SECONDS``, the
heaviest first, so that the quick files fill the gaps and both workers end together.
"""
from collections import Counter

import pytest

from browser_lab import CHROMIUM, CHROMIUM_ARGS
from grader.course import Course


@pytest.fixture(scope="session")
def released_course(tmp_path_factory):
    """A course copy whose assignments are generated into its gradebook (hidden tests stored)."""
    course = Course().copy_to(tmp_path_factory.mktemp("course"))
    for assignment in course.assignments():
        course.nbgrader("generate_assignment", assignment, "--force")
    return course


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


# Files whose tests share a session fixture (its name): one group, one process.
SHARED = {name: "released_course" for name in
          ("test_release.py", "test_a1_backprop.py", "test_a2_layers.py", "test_a3_two_layer_net.py")}
# Wall seconds of the heaviest files in `make test` (2 workers, 2 cores; 2026-11-28), to hand the
# heaviest out first. A file not listed is quick; it goes after these, in collection order.
SECONDS = {"test_hub_browser.py": 137, "test_hub_postgres.py": 102, "test_dask.py": 99,
           "test_batch_grading.py": 79, "test_hostile_class.py": 64, "test_browser.py": 55,
           "test_release.py": 52, "test_sandbox.py": 50, "test_a2_layers.py": 29,
           "test_formgrader_inert.py": 28, "test_collect.py": 26, "test_a1_backprop.py": 22,
           "test_a3_two_layer_net.py": 22, "test_exchange_permissions.py": 19, "test_verify.py": 17,
           "test_report.py": 8, "test_executor.py": 7, "test_inert_browser.py": 5}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items):
    def group(item):
        return SHARED.get(item.path.name, item.path.name)
    seconds = Counter()
    for name, spent in SECONDS.items():
        seconds[SHARED.get(name, name)] += spent
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group(item)))
    items.sort(key=lambda item: -seconds[group(item)])  # stable: a group's files stay in order
