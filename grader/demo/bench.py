"""`make bench`: this grader against stock serial `nbgrader autograde`, on the same simulated class.

A benchmark, not a test: it prints submissions per minute, their ratio and the peak memory of
each run's whole process tree (sampled), for the README. Both runs start from the same collected
submissions in separate course copies and use the same per-cell time limit.
"""
import argparse
import os
import platform
import shutil
import subprocess
import sys
import threading
import time

import psutil

from ..course import Course
from ..steps import collect
from .demo import DEMO_ASSIGNMENT, build_demo_course


def _measure(command, cwd):
    """(seconds, peak MB of the process tree's summed RSS, return code) of a command."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak, root = 0, psutil.Process(process.pid)
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.monotonic()
    sampler.start()
    code = process.wait()
    elapsed = time.monotonic() - start
    done.set()
    sampler.join()
    return elapsed, peak / 2**20, code


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dest", default=str(Course().grader / "bench"))
    parser.add_argument("--cell-timeout", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)

    ours, archive, expected = build_demo_course(Course(), os.path.join(args.dest, "ours"))
    collect.from_lms(ours, DEMO_ASSIGNMENT, archive, "canvas")
    stock_root = os.path.join(args.dest, "stock")
    shutil.rmtree(stock_root, ignore_errors=True)
    shutil.copytree(ours.root, stock_root)
    students = len(collect.students(ours, DEMO_ASSIGNMENT))

    bindir = os.path.dirname(sys.executable)
    os.environ["PATH"] = bindir + os.pathsep + os.environ["PATH"]
    stock = _measure([os.path.join(bindir, "nbgrader"), "autograde", DEMO_ASSIGNMENT,
                      f"--Execute.timeout={args.cell_timeout}"], stock_root)
    grader = _measure([sys.executable, "-m", "grader", "--course", str(ours.root), "grade",
                       DEMO_ASSIGNMENT, f"--cell-timeout={args.cell_timeout}",
                       f"--verify-timeout={args.cell_timeout}", f"--jobs={args.jobs}"],
                      Course().root)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}")
    print(f"class: {students} submissions of {DEMO_ASSIGNMENT} ({len(expected)} simulated students)")
    print(f"{'':28}{'seconds':>9}{'subs/min':>10}{'peak MB':>9}")
    for name, (seconds, peak, code) in [("stock nbgrader autograde", stock),
                                        (f"grader (sandbox, {args.jobs} jobs)", grader)]:
        note = "" if code == 0 else f"  (exit code {code})"
        print(f"{name:<28}{seconds:9.1f}{60 * students / seconds:10.1f}{peak:9.0f}{note}")
    print(f"speed-up: {stock[0] / grader[0]:.2f}x")


if __name__ == "__main__":
    main()
