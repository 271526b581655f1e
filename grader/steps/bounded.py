"""Trusted work on a student's file, bounded: a child process with a memory and a time limit.

Parsing a notebook and reading its answer cells are trusted steps, but their cost depends on
what the student sent (deeply nested JSON, a cell full of magics). Each such step runs here, in
a fresh Python of its own: a blow-up costs that student's step only (``Exceeded``, with the
reason for a person), never the main process or the other students.
"""
import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # where ``-m grader...`` is found

MEMORY_VARIABLE = "GRADER_BOUNDED_MEMORY"


@dataclass(frozen=True)
class Bounds:
    """What one child may spend: wall seconds and bytes of address space."""
    seconds: float = 60.0
    memory_bytes: int = 2 * 2**30

    def describe(self):
        return f"{self.seconds:g} s, {self.memory_bytes // 2**20} MiB"


class Exceeded(Exception):
    """The child ran out of time or memory, or died: the input is too expensive to read."""


def run(module, args, bounds):
    """JSON printed by ``python -m module *args`` run within ``bounds``, or raise Exceeded."""
    env = dict(os.environ, **{MEMORY_VARIABLE: str(bounds.memory_bytes)})
    try:
        done = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=PACKAGE_PARENT, env=env,
                              capture_output=True, timeout=bounds.seconds, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise Exceeded(f"took longer than {bounds.seconds:g} s") from None
    if done.returncode != 0:
        error = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["killed"])[-1]
        if "MemoryError" in error or done.returncode < 0:
            raise Exceeded(f"needed more than {bounds.memory_bytes // 2**20} MiB ({error[:100]})")
        raise Exceeded(f"failed: {error[:200]}")
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise Exceeded("printed no result") from None


def limit_this_process():
    """In the child, first thing: cap its address space (and CPU) as the parent asked."""
    memory = int(os.environ.get(MEMORY_VARIABLE, "0"))
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    sys.setrecursionlimit(10_000)


def answer(result):
    """In the child: print ``result`` as the one JSON line the parent reads."""
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
