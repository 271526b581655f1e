"""`make bench`: how grading cost grows with the class, against stock serial `nbgrader autograde`.

A benchmark, not a test. For each simulated class (32 and 128 submissions; 512 with
``--large``) and each number of jobs (1 and 2) it grades a fresh copy of the collected class
with the sandbox and verification on, and prints the wall time, submissions per minute, seconds
per submission in each phase (``batch.Phases``: they add up to the wall time) and the peak memory
of the grading process tree, sampled: PSS (proportional set size, each shared page divided among
the processes that map it: the memory the run really occupies) beside the sum of RSS (each
process's resident pages counted in full: torch's pages, shared by every process forked from a
warm fork server, are counted once per process). Stock nbgrader grades the class of 32 in the
same invocation, for the ratio. The machine's load average is printed before and after: other
work on the machine slows every row.
"""
import argparse
import logging
import multiprocessing
import os
import platform
import queue
import shutil
import subprocess
import sys
import threading
import time

import psutil

from .. import batch
from ..course import Course, GradeOptions
from ..steps import collect
from .demo import DEMO_ASSIGNMENT, build_demo_course

SAMPLE_SECONDS = 0.5  # each sample reads every process's smaps: ~3 ms per process, paid by the run


class TreeMemory:
    """Peak PSS and peak summed RSS (bytes) of a process and its descendants, sampled."""

    def __init__(self, pid):
        self.root, self.pss, self.rss = psutil.Process(pid), 0, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._done.wait(SAMPLE_SECONDS):
            pss = rss = 0
            try:
                tree = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in tree:
                try:
                    info = process.memory_full_info()
                except psutil.Error:  # ended between listing and reading
                    continue
                pss, rss = pss + info.pss, rss + info.rss
            self.pss, self.rss = max(self.pss, pss), max(self.rss, rss)

    def stop(self):
        self._done.set()
        self._thread.join()


def _grade_in_child(root, options, log_path, results):
    """In a child process (so that its whole tree can be measured): grade, send back timings."""
    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
        logging.getLogger("traitlets").setLevel(logging.WARNING)
        result = batch.grade(Course(root), DEMO_ASSIGNMENT, options)
        results.put(result.timings)


def run_grader(root, options):
    """(seconds, {phase: seconds}, peak PSS, peak RSS) of one grading run of the course at ``root``."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_grade_in_child,
                            args=(str(root), options, os.path.join(root, "bench.log"), results))
    start = time.monotonic()
    child.start()
    memory = TreeMemory(child.pid)
    while True:
        try:
            timings = results.get(timeout=5)
            break
        except queue.Empty:
            if not child.is_alive():
                memory.stop()
                raise RuntimeError(f"grading failed: see {root}/bench.log") from None
    child.join()
    elapsed = time.monotonic() - start
    memory.stop()
    return elapsed, timings, memory.pss, memory.rss


def run_stock(root, cell_timeout):
    """(seconds, peak PSS, peak RSS, exit code) of stock `nbgrader autograde` on the course."""
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
    start = time.monotonic()
    process = subprocess.Popen([os.path.join(bindir, "nbgrader"), "autograde", DEMO_ASSIGNMENT,
                                f"--Execute.timeout={cell_timeout}"], cwd=root, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    memory = TreeMemory(process.pid)
    code = process.wait()
    elapsed = time.monotonic() - start
    memory.stop()
    return elapsed, memory.pss, memory.rss, code


def collected_class(dest, size):
    """A course at ``dest`` holding a simulated class of ``size``, collected; the number collected."""
    course, archive, _ = build_demo_course(Course(), dest, size)
    collect.from_lms(course, DEMO_ASSIGNMENT, archive, "canvas")
    return course, len(collect.students(course, DEMO_ASSIGNMENT))


def fresh_copy(course, dest):
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(course.root, dest)
    return dest


def _phase_seconds(timings, seconds, phase):
    """A phase's seconds; start-up also takes what the run spent outside ``batch.grade``."""
    extra = seconds - sum(timings.values()) if phase == "start-up" else 0.0
    return timings.get(phase, 0.0) + extra


def _mb(value):
    return f"{value / 2**20:.0f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", default=str(Course().grader / "bench"))
    parser.add_argument("--cell-timeout", type=int, default=10)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--large", action="store_true", help="add the class of 512")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-stock", dest="stock", action="store_false", help="skip stock nbgrader")
    args = parser.parse_args(argv)
    sizes = sorted(set(args.sizes + ([512] if args.large else [])))
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"class: simulated submissions of {DEMO_ASSIGNMENT}, {args.cell_timeout} s per cell; "
          "grader with sandbox and verification on")
    print("memory: peak PSS of the process tree (shared pages divided among their processes); "
          "summed RSS beside it (shared pages counted once per process)")
    phases = batch.Phases.NAMES
    header = (f"{'run':<30}{'subs':>5}{'seconds':>9}{'subs/min':>9}  "
              + "".join(f"{p:>9}" for p in phases) + f"{'PSS MB':>8}{'ΣRSS MB':>9}")
    print("\nseconds per submission by phase:")
    print(header)
    stock_rate = None
    for size in sizes:
        course, students = collected_class(os.path.join(args.dest, f"class-{size}"), size)
        if args.stock and size == 32:
            seconds, pss, rss, code = run_stock(fresh_copy(course, os.path.join(args.dest, "stock")),
                                                args.cell_timeout)
            stock_rate = 60 * students / seconds
            note = "" if code == 0 else f"  (exit code {code})"
            print(f"{'stock nbgrader autograde':<30}{students:>5}{seconds:9.1f}{stock_rate:9.1f}  "
                  + "".join(f"{'':>9}" for _ in phases) + f"{_mb(pss):>8}{_mb(rss):>9}{note}", flush=True)
        for jobs in args.jobs:
            options = GradeOptions(jobs=jobs, cell_timeout=args.cell_timeout, verify_timeout=args.cell_timeout)
            root = fresh_copy(course, os.path.join(args.dest, f"run-{size}-{jobs}"))
            seconds, timings, pss, rss = run_grader(root, options)
            rate = 60 * students / seconds
            ratio = f"  {rate / stock_rate:.2f}x stock" if stock_rate and size == 32 else ""
            print(f"{f'grader, {jobs} job' + ('s' if jobs > 1 else ''):<30}{students:>5}{seconds:9.1f}"
                  f"{rate:9.1f}  " + "".join(f"{_phase_seconds(timings, seconds, p) / students:9.3f}" for p in phases)
                  + f"{_mb(pss):>8}{_mb(rss):>9}{ratio}", flush=True)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("seconds per submission in a phase = the phase's wall time / submissions; start-up: starting "
          "the grading process, checking the sandbox, starting and stopping the workers")


if __name__ == "__main__":
    main()
