"""The instructor's loop for one assignment: repair, scan, autograde and verify, score, feedback, report.

Each step is a module of ``grader/steps/`` and fills its own field of each student's
``StudentOutcome``. A step that fails for one student costs that student only: the failure
becomes a problem (manual review) on their outcome, and the run goes on to a complete CSV.
"""
import importlib.util
import logging
import secrets
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from . import schedule
from .outcome import StudentOutcome
from .runtime import runtime_for
from .sandbox import launcher
from .steps import autograde, class_report, collect, feedback, repair, report, scan, score

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
    timings: dict = field(default_factory=dict)  # phase -> wall seconds (``Phases``)

    @property
    def manual_review(self):
        """{student: why} for the students a person must look at."""
        return {r["student"]: r["notes"] for r in self.rows if r["total"] is None}


class Phases:
    """Wall seconds of each phase of a run, in order; they add up to the run's time.

    Start-up is the worker processes' (spawning, imports, the warm sandbox) and their shutting
    down. Start-up, execute, verify, record and feedback share the pool's span: its wall time is
    split in proportion to the seconds spent in each (execute and verify run side by side).
    """
    NAMES = ("start-up", "repair", "scan", "execute", "verify", "record", "feedback", "report")

    def __init__(self):
        self.seconds = {}
        self._last = time.monotonic()

    def done(self, phase, share=None):
        """End ``phase`` now; ``share``: {phase: worker seconds} to split its time by."""
        now, share = time.monotonic(), share or {phase: 1.0}
        total = sum(share.values()) or 1.0
        for name, part in share.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + (now - self._last) * part / total
        self._last = now

    def line(self):
        return ", ".join(f"{name} {self.seconds.get(name, 0.0):.1f} s" for name in self.NAMES)


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


def _graded_stream(runtime, assignment, students):
    """Each student's runtime.Graded, once, as it finishes (executed, verified and recorded)."""
    seed = secrets.randbits(31)  # one class, one set of fresh inputs
    yield from tqdm(runtime.grade(assignment, students, seed), total=len(students), desc="grading",
                    unit="student")


def _take(outcome, done):
    """Fill ``outcome`` from its student's runtime.Graded."""
    result = done.executed
    if result.error:
        outcome.problems.append("autograde failed: " + _last_line(result.error))
        return
    outcome.ending = result.ending
    verification = done.verification
    if verification and verification.error:
        outcome.problems.append("verification failed: " + verification.error)
    elif verification:
        outcome.verdicts = verification.verdicts


def grade(course, assignment, options, runtime=None):
    """Grade every collected submission of ``assignment``; returns the BatchResult.

    runtime: where grading runs (``grader.runtime``); by default the one ``options`` ask for.
    """
    outcomes = [StudentOutcome(s) for s in _check_ready(course, assignment, options)]
    try:  # the due date and extensions of grader/calendar.csv, grader/extensions.csv
        schedule.apply(course, assignment, [o.student for o in outcomes])
    except schedule.CalendarError as error:
        raise InstructorError(str(error)) from None
    phases = Phases()
    runtime = runtime or runtime_for(course, options)
    runtime.start()  # its slow set-up (torch imported) goes on while repair and scan run
    try:
        return _grade(course, assignment, options, outcomes, phases, runtime)
    finally:
        runtime.close()


def _grade(course, assignment, options, outcomes, phases, runtime):
    repaired = set()

    def repair_one(outcome):
        record = repair.repair_submission(course, assignment, outcome.student)
        outcome.repairs += record.repairs
        outcome.problems += record.problems
        repaired.add(outcome.student)
    _each_student("repair", outcomes, repair_one)
    gradeable = [o.student for o in outcomes if o.student in repaired
                 and any(course.submission(o.student, assignment).glob("*.ipynb"))]
    phases.done("repair")

    notebooks = {o.student: sorted(course.submission(o.student, assignment).glob("*.ipynb"))
                 for o in outcomes if o.student in gradeable}
    scanned = scan.scan_submissions([path for paths in notebooks.values() for path in paths])

    def scan_one(outcome):
        for path in notebooks[outcome.student]:
            outcome.findings += scanned[str(path)].findings
    _each_student("scan", [o for o in outcomes if o.student in gradeable], scan_one)
    phases.done("scan")
    log.info("grading %d of %d submissions of %s (sandbox %s%s)", len(gradeable), len(outcomes),
             assignment, "on" if options.sandboxed else "OFF",
             f", on the cluster at {options.scheduler}" if options.scheduler else "")

    by_student = {o.student: o for o in outcomes}
    try:
        runtime.ready()
    except launcher.SandboxUnavailable as error:  # each student's worker then says so
        log.error("%s", error)
    phases.done("start-up")
    if importlib.util.find_spec(f"grader.specs.{assignment}") is None:  # found, not imported (torch)
        log.info("note: no grader/specs/%s.py, so scores are the notebook's own tests", assignment)
    # One stream: as each student's execute + verify + record comes back, their verified score
    # is written and their feedback page queued on the same pool, behind the grading still to
    # do; nothing waits for the whole class but the report.
    seconds = {phase: 0.0 for phase in ("start-up", "execute", "verify", "record", "feedback")}
    pages = {}
    with runtime.workers(max(1, len(gradeable))), score.recorder(course, assignment) as record:
        for done in _graded_stream(runtime, assignment, gradeable):
            outcome = by_student[done.executed.student]
            _take(outcome, done)
            for phase, spent in done.seconds.items():
                seconds[phase] += spent
            if outcome.gradeable:
                started = time.monotonic()
                record(outcome)
                seconds["record"] += time.monotonic() - started
                pages[feedback.submit(runtime, course, assignment, outcome)] = outcome.student
        autograde.clean_up(course)
        for student, (error, spent) in feedback.finished(pages).items():
            seconds["feedback"] += spent
            if error:
                by_student[student].problems.append("feedback failed: " + _last_line(error))
        phases.done("execute", share=seconds)
    phases.done("start-up")  # the workers ending

    out = course.reports / assignment
    out.mkdir(parents=True, exist_ok=True)
    tests, rows = report.collect_rows(course, assignment, outcomes, options.sandboxed)
    csv_path = out / "grades.csv"
    the_class = class_report.write(course, assignment, outcomes, rows, tests, out)  # fills rows' mistakes
    report.write_csv(csv_path, tests, rows)
    figures = report.draw_figures(out, tests, rows) + the_class.figures
    phases.done("report")
    result = BatchResult(outcomes, rows, tests, csv_path, figures, course.feedback, phases.seconds)
    log.info("%s", report.summary(tests, rows))
    log.info("%s", the_class.summary)
    if result.manual_review:
        log.info("\nneeds manual review / 직접 확인 필요:\n%s",
                 "\n".join(f"  {student}: {why}" for student, why in result.manual_review.items()))
    log.info("\ntime: %s", phases.line())
    log.info("grades:   %s\nfigures:  %s\nfeedback: %s/<student>/%s/", csv_path,
             ", ".join(str(f) for f in figures), course.feedback, assignment)
    return result
