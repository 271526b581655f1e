"""The demo: a simulated class of 32 students graded end to end in a throwaway course copy."""
import logging
import shutil
import zipfile

from .. import batch
from ..steps import collect
from . import simulate

log = logging.getLogger("grader")

DEMO_ASSIGNMENT, DEMO_NOTEBOOK = "a1_backprop", "backprop"


def build_demo_course(course, dest, size=None):
    """A fresh course copy at ``dest`` with the release generated and a Canvas zip of the class
    (the simulated class of 32, or ``size`` students repeating it)."""
    shutil.rmtree(dest, ignore_errors=True)
    demo = course.copy_to(dest)
    demo.nbgrader("generate_assignment", DEMO_ASSIGNMENT, "--force")
    plan = simulate.simulated_class(demo.solutions / DEMO_ASSIGNMENT / f"{DEMO_NOTEBOOK}.ipynb", size)
    files = demo.root / "lms_download"
    expected = simulate.write_lms_download(
        files, demo.release / DEMO_ASSIGNMENT / f"{DEMO_NOTEBOOK}.ipynb", plan)
    archive = demo.root / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(files.iterdir()):
            zf.write(path, path.name)
    shutil.rmtree(files)
    return demo, archive, expected


def run_demo(course, dest, options):
    """Build the demo course at ``dest`` (default grader/demo-class), collect, grade; (result, expected)."""
    demo, archive, expected = build_demo_course(course, dest or course.grader / "demo-class")
    log.info("simulated class: %d students, Canvas-style zip %s", len(expected), archive)
    collected = collect.from_lms(demo, DEMO_ASSIGNMENT, archive, "canvas")
    log.info("collected %d submissions with nbgrader zip_collect", len(collected.students))
    result = batch.grade(demo, DEMO_ASSIGNMENT, options)
    wrong = [(r["student"], r["total"], expected[r["student"]]) for r in result.rows
             if r["total"] != expected[r["student"]][1]]
    log.info("\nevery score as simulated" if not wrong else f"\nunexpected scores: {wrong}")
    return result, expected
