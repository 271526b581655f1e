"""The instructor's loop for one assignment: repair, autograde, feedback, grades.

Each step is its own module; this one only runs them in order, keeps going past any one
student's failure, and says where the results are.
"""
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import autograde, collect, feedback, report, repair, sandbox, score, verify


class InstructorError(Exception):
    """Something the instructor must fix (unknown assignment, nothing to grade)."""


@dataclass
class BatchResult:
    rows: list
    tests: list
    csv: Path
    figures: list
    feedback: Path
    manual_review: dict = field(default_factory=dict)


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total, label, stream=sys.stderr):
        self.total, self.done, self.label, self.stream = total, 0, label, stream

    def __call__(self, _item=None):
        self.done += 1
        filled = int(30 * self.done / max(1, self.total))
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] "
                          f"{self.done}/{self.total}")
        if self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def grade(course, assignment, jobs=None, cell_timeout=30, notebook_timeout=300, verify_timeout=30,
          executor=autograde.EXECUTOR, sandboxed=True, log=print):
    if assignment not in course.assignments():
        raise InstructorError(f"unknown assignment {assignment!r}; have {course.assignments()}")
    if sandboxed:
        try:
            sandbox.check()
        except sandbox.SandboxUnavailable as error:
            raise InstructorError(str(error)) from None
    if not course.gradebook.exists() and course.db_url.startswith("sqlite:"):
        raise InstructorError("no gradebook yet: run `make release` (nbgrader generate_assignment)")
    students = collect.students(course, assignment)
    if not students:
        raise InstructorError(f"no submissions in {course.submitted}/*/{assignment}")

    repairs, problems = {}, {}
    for student in students:
        record = repair.repair_submission(course, assignment, student)
        repairs[student], problems[student] = record.repairs, record.problems
    gradeable = [s for s in students if any((course.submitted / s / assignment).glob("*.ipynb"))]

    log(f"grading {len(gradeable)} of {len(students)} submissions of {assignment} "
        f"(sandbox {'on' if sandboxed else 'OFF'})")
    started = time.monotonic()
    limits = {"timeout": cell_timeout, "notebook_timeout": notebook_timeout, "sandbox": sandboxed}
    with ThreadPoolExecutor(max_workers=1) as background:  # verification needs only the answers
        verifying = background.submit(verify.verify_students, course, assignment, gradeable,
                                      jobs=jobs or 2, sandboxed=sandboxed, timeout=verify_timeout)
        failed = autograde.autograde(course, assignment, gradeable, jobs=jobs, executor=executor,
                                     limits=limits, progress=Progress(len(gradeable), "autograde"))
        autograded = time.monotonic()
        verifications = verifying.result()
    for student, error in failed.items():
        problems[student].append("autograde failed: " + error.strip().splitlines()[-1][:300])
    graded = [s for s in gradeable if s not in failed]
    disagreements = score.record_verified(course, assignment,
                                          {s: v for s, v in verifications.items() if s in graded})
    verified = time.monotonic()
    if verify.spec_for(assignment) is None:
        log(f"note: no grader/specs/{assignment}.py, so scores are the notebook's own tests")
    feedback_failed = feedback.generate(course, assignment, graded, verifications)
    for student, error in feedback_failed.items():
        problems[student].append("feedback failed: " + error.strip().splitlines()[-1][:300])

    log(f"time: autograde {autograded - started:.0f} s, verification (alongside) finished "
        f"{verified - autograded:.0f} s later, feedback {time.monotonic() - verified:.0f} s")
    out = course.grader / "reports" / assignment
    out.mkdir(parents=True, exist_ok=True)
    tests, rows = report.collect_rows(course, assignment, students, repairs, problems, sandboxed,
                                      verified=set(verifications) & set(graded),
                                      disagreements=disagreements)
    csv_path = out / "grades.csv"
    report.write_csv(csv_path, tests, rows)
    figures = report.draw_figures(out, tests, rows)
    manual = {r["student"]: r["notes"] for r in rows if r["total"] is None}
    log(report.summary(tests, rows))
    if manual:
        log("\nneeds manual review / 직접 확인 필요:")
        for student, why in manual.items():
            log(f"  {student}: {why}")
    log(f"\ngrades:   {csv_path}\nfigures:  {', '.join(str(f) for f in figures)}\n"
        f"feedback: {course.feedback}/<student>/{assignment}/")
    return BatchResult(rows, tests, csv_path, figures, course.feedback, manual)
