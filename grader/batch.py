"""The instructor's loop for one assignment: repair, scan, autograde and verify, score, feedback, report.

Each step is a module of ``grader/steps/`` and fills its own field of each student's
``StudentOutcome``. A step that fails for one student costs that student only: the failure
becomes a problem (manual review) on their outcome, and the run goes on to a complete CSV.
"""
import logging
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .outcome import StudentOutcome
from .sandbox import launcher
from .steps import autograde, collect, feedback, repair, report, scan, score, verify

log = logging.getLogger("grader")


class InstructorError(Exception):
    """Something the instructor must fix (unknown assignment, nothing to grade)."""


@dataclass
class BatchResult:
    outcomes: list
    rows: list
    tests: dict
    csv: Path
    figures: list
    feedback: Path

    @property
    def manual_review(self):
        """{student: why} for the students a person must look at."""
        return {r["student"]: r["notes"] for r in self.rows if r["total"] is None}


def _last_line(error):
    return (error.strip().splitlines() or ["?"])[-1][:300]


def _each_student(step, outcomes, action):
    """Run ``action(outcome)`` for each outcome; a failure becomes that student's problem."""
    for outcome in outcomes:
        try:
            action(outcome)
        except Exception:
            outcome.problems.append(f"{step} failed: {_last_line(traceback.format_exc())}")


def _check_ready(course, assignment, options):
    if assignment not in course.assignments():
        raise InstructorError(f"unknown assignment {assignment!r}; have {course.assignments()}")
    if options.sandboxed:
        try:
            launcher.check()
        except launcher.SandboxUnavailable as error:
            raise InstructorError(str(error)) from None
    if course.is_sqlite and not course.gradebook_file.exists():
        raise InstructorError("no gradebook yet: run `make release` (nbgrader generate_assignment)")
    students = collect.students(course, assignment)
    if not students:
        raise InstructorError(f"no submissions in {course.submitted}/*/{assignment}")
    return students


def grade(course, assignment, options):
    """Grade every collected submission of ``assignment``; returns the BatchResult."""
    outcomes = [StudentOutcome(s) for s in _check_ready(course, assignment, options)]

    repaired = set()

    def repair_one(outcome):
        record = repair.repair_submission(course, assignment, outcome.student)
        outcome.repairs += record.repairs
        outcome.problems += record.problems
        repaired.add(outcome.student)
    _each_student("repair", outcomes, repair_one)
    gradeable = [o.student for o in outcomes if o.student in repaired
                 and any(course.submission(o.student, assignment).glob("*.ipynb"))]

    def scan_one(outcome):
        for path in sorted(course.submission(outcome.student, assignment).glob("*.ipynb")):
            outcome.findings += scan.scan_notebook(path)
    _each_student("scan", [o for o in outcomes if o.student in gradeable], scan_one)
    log.info("grading %d of %d submissions of %s (sandbox %s)", len(gradeable), len(outcomes),
             assignment, "on" if options.sandboxed else "OFF")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as background:  # verification needs only the answers
        verifying = background.submit(verify.verify_students, course, assignment, gradeable, options)
        executed = autograde.autograde(course, assignment, gradeable, options)
        autograded = time.monotonic()
        verdicts = verifying.result()
    by_student = {o.student: o for o in outcomes}
    for student, result in executed.items():
        outcome = by_student[student]
        if result.error:
            outcome.problems.append("autograde failed: " + _last_line(result.error))
            continue
        outcome.ending = result.ending
        verification = verdicts.get(student)
        if verification and verification.error:
            outcome.problems.append("verification failed: " + verification.error)
        elif verification:
            outcome.verdicts = verification.verdicts
    graded = [o for o in outcomes if o.gradeable]
    _each_student("score", graded, lambda o: score.record_verified(course, assignment, [o]))
    verified = time.monotonic()
    if verify.spec_for(assignment) is None:
        log.info("note: no grader/specs/%s.py, so scores are the notebook's own tests", assignment)
    for student, error in feedback.generate(course, assignment, graded).items():
        by_student[student].problems.append("feedback failed: " + _last_line(error))
    log.info("time: autograde %.0f s, verification (alongside) finished %.0f s later, feedback %.0f s",
             autograded - started, verified - autograded, time.monotonic() - verified)

    out = course.reports / assignment
    out.mkdir(parents=True, exist_ok=True)
    tests, rows = report.collect_rows(course, assignment, outcomes, options.sandboxed)
    csv_path = out / "grades.csv"
    report.write_csv(csv_path, tests, rows)
    figures = report.draw_figures(out, tests, rows)
    result = BatchResult(outcomes, rows, tests, csv_path, figures, course.feedback)
    log.info("%s", report.summary(tests, rows))
    if result.manual_review:
        log.info("\nneeds manual review / 직접 확인 필요:\n%s",
                 "\n".join(f"  {student}: {why}" for student, why in result.manual_review.items()))
    log.info("\ngrades:   %s\nfigures:  %s\nfeedback: %s/<student>/%s/", csv_path,
             ", ".join(str(f) for f in figures), course.feedback, assignment)
    return result
