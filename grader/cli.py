"""`python -m grader ...`: the instructor's commands. Exit code 1 only for the instructor's errors."""
import argparse
import logging
import sys
import warnings

from sqlalchemy.exc import SAWarning

from . import batch
from .course import Course, GradeOptions
from .steps import collect

DEFAULTS = GradeOptions()


def _grade_args(parser):
    parser.add_argument("--jobs", type=int, default=DEFAULTS.jobs, help="parallel workers (default: cores)")
    parser.add_argument("--cell-timeout", type=int, default=DEFAULTS.cell_timeout,
                        help="seconds per cell (default: the course's Execute.timeout)")
    parser.add_argument("--notebook-timeout", type=int, default=DEFAULTS.notebook_timeout,
                        help="seconds per notebook")
    parser.add_argument("--verify-timeout", type=int, default=DEFAULTS.verify_timeout,
                        help="seconds for re-checking one student's gradients outside the notebook")
    parser.add_argument("--no-sandbox", dest="sandboxed", action="store_false",
                        help="run student code without bubblewrap (only for code you trust)")
    parser.add_argument("--scheduler", default=DEFAULTS.scheduler,
                        help="a Dask scheduler (tcp://host:8786): its workers execute and verify; "
                             "this machine keeps the gradebook, feedback and report")


def _options(args):
    return GradeOptions(jobs=max(1, args.jobs), cell_timeout=args.cell_timeout,
                        notebook_timeout=args.notebook_timeout, verify_timeout=args.verify_timeout,
                        sandboxed=args.sandboxed, scheduler=args.scheduler)


def parser():
    top = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    top.add_argument("--course", default=None, help="course root (default: this repository)")
    commands = top.add_subparsers(dest="command", required=True)

    p = commands.add_parser("collect", help="bring submissions into the course's submitted folder")
    p.add_argument("assignment")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="source", help="an LMS download: a .zip or a folder")
    source.add_argument("--exchange", action="store_true", help="nbgrader collect from the exchange")
    p.add_argument("--scheme", default="canvas",
                   help=f"file naming: {', '.join(collect.SCHEMES)}, or a regex with "
                        "(?P<student_id>...) and (?P<file_id>...) matched against /<path inside the download>")

    p = commands.add_parser("grade", help="repair, autograde, feedback and grades for an assignment")
    p.add_argument("assignment")
    _grade_args(p)

    p = commands.add_parser("export", help="Canvas's gradebook import CSV (grader/export.py)")
    p.add_argument("assignment", nargs="*", help="assignments (default: all in the gradebook)")
    p.add_argument("--to", default="canvas_grades.csv", help="the CSV to write")

    p = commands.add_parser("demo", help="simulate a class and grade it end to end")
    p.add_argument("--dest", default=None, help="demo course folder (default grader/demo-class)")
    _grade_args(p)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    logging.getLogger("grader").setLevel(logging.INFO)  # ours; nbgrader's per-file chatter stays out
    warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader 0.9.6 with SQLAlchemy 2
    course = Course(args.course) if args.course else Course()
    try:
        if args.command == "collect":
            found = (collect.from_exchange(course, args.assignment) if args.exchange
                     else collect.from_lms(course, args.assignment, args.source, args.scheme))
            print(f"{len(found.students)} submissions in {course.submitted}")
            for r in found.rejected:
                print(f"for manual review: {r.upload} (student {r.student or 'unknown'}): {r.reason}")
        elif args.command == "grade":
            batch.grade(course, args.assignment, _options(args))
        elif args.command == "export":
            from .export import ExportError, export
            try:
                print(f"Canvas import file: {export(course, args.assignment, args.to)}")
            except ExportError as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
        elif args.command == "demo":
            from .demo.demo import run_demo
            run_demo(course, args.dest, _options(args))
    except (batch.InstructorError, collect.CollectError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
