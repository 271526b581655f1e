"""Collect: submissions into grader/submitted/<student>/<assignment>/, through nbgrader.

From an LMS download (a zip or a folder) with ``nbgrader zip_collect`` and a file-name pattern;
from the nbgrader exchange with ``nbgrader collect``.
"""
import re
import shutil
from pathlib import Path

# Patterns are matched against each extracted file's absolute path.
SCHEMES = {
    # Canvas: <name>_[late_]<userid>_<submissionid>_<file>[-<n>].ipynb
    "canvas": r".*/[^/_]+_(?:late_)?(?P<student_id>\d+)_\d+_(?P<file_id>[^/]+?)(?:-\d+)?\.ipynb$",
    # one folder per student: <student>/<file>.ipynb
    "folders": r".*/(?P<student_id>[^/]+)/(?P<file_id>[^/]+)\.ipynb$",
}


class CollectError(Exception):
    """The instructor's input is unusable (missing path, bad pattern)."""


def from_lms(course, assignment, source, scheme="canvas"):
    """Copy ``source`` (zip or folder) in as the LMS archive and run ``nbgrader zip_collect``."""
    source = Path(source)
    if not source.exists():
        raise CollectError(f"no such file or folder: {source}")
    pattern = SCHEMES.get(scheme, scheme)
    try:
        groups = re.compile(pattern).groupindex
    except re.error as error:
        raise CollectError(f"bad file-name pattern {pattern!r}: {error}") from None
    if not {"student_id", "file_id"} <= set(groups):
        raise CollectError("the pattern must define (?P<student_id>...) and (?P<file_id>...)")
    archive = course.downloaded / assignment / "archive"
    shutil.rmtree(archive, ignore_errors=True)
    archive.mkdir(parents=True)
    if source.is_dir():
        shutil.copytree(source, archive / source.name)
    else:
        shutil.copy(source, archive)
    result = course.nbgrader(
        "zip_collect", assignment, "--force",
        f"--FileNameCollectorPlugin.named_regexp={pattern}", check=False)
    if result.returncode != 0:
        raise CollectError(f"nbgrader zip_collect failed:\n{result.stderr[-2000:]}")
    return students(course, assignment)


def from_exchange(course, assignment):
    """Run ``nbgrader collect`` (latest submission of each student)."""
    result = course.nbgrader("collect", assignment, "--update", check=False)
    if result.returncode != 0:
        raise CollectError(f"nbgrader collect failed:\n{result.stderr[-2000:]}")
    return students(course, assignment)


def students(course, assignment):
    """Students with a submission folder for ``assignment``."""
    if not course.submitted.exists():
        return []
    return sorted(p.parent.name for p in course.submitted.glob(f"*/{assignment}") if p.is_dir())
