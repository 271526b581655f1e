"""Shared fixtures: a private copy of the course, so tests never touch the repo's gradebook."""
import pytest

from grader.course import Course


@pytest.fixture(scope="session")
def released_course(tmp_path_factory):
    """A course copy whose assignments are generated into its gradebook (hidden tests stored)."""
    course = Course().copy_to(tmp_path_factory.mktemp("course"))
    for assignment in course.assignments():
        course.nbgrader("generate_assignment", assignment, "--force")
    return course
