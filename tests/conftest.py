"""Shared fixtures: a private copy of the course, so tests never touch the repo's gradebook.

``make test`` runs test files in parallel (pytest-xdist, ``--dist loadfile``: a file's tests
and its module fixtures stay in one process). Files are handed out in collection order, so the
slow ones (whole classes graded, browsers) are collected first and the quick ones fill the gaps.
"""
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


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: files stay whole
