"""Trusted work on a student's file, bounded: a child process with a memory and a time limit.

Parsing a notebook and reading its answer cells are trusted steps, but their cost depends on
what the student sent (deeply nested JSON, a cell full of magics). Each such step runs here, in
a fresh Python of its own: a blow-up costs that student's step only (``Exceeded``, with the
reason for a person), never the main process or the other students.
"""
import json
import os
import resource
import selectors
import subprocess
import sys
import tempfile
import time
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
        raise _died(done.returncode, done.stderr.decode("utf-8", "replace"), bounds)
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise Exceeded("printed no result") from None


def run_each(module, items, bounds, args=()):
    """{item: JSON result or Exceeded} of ``python -m module LIST START *args``, a child that
    reads the items (strings) from the JSON file LIST, from index START on, and prints one JSON
    line per item, in order.

    One child serves many items (Python starts once); each item may take ``bounds.seconds`` and
    the child ``bounds.memory_bytes``. A child that dies or stalls costs the item it was on
    (``Exceeded``): it is stopped and a fresh one goes on from the next item.
    """
    items, results = list(items), {}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as listed:
        json.dump(items, listed)
        listed.flush()
        while len(results) < len(items):
            start = len(results)
            command = [sys.executable, "-m", module, listed.name, str(start), *map(str, args)]
            for item, result in zip(items[start:], _answers(command, bounds)):
                results[item] = result
    return results


def _answers(command, bounds):
    """Each JSON line the child prints, then one Exceeded if it stops before it is done."""
    env = dict(os.environ, **{MEMORY_VARIABLE: str(bounds.memory_bytes)})
    with tempfile.TemporaryFile() as errors, subprocess.Popen(
            command, cwd=PACKAGE_PARENT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=errors) as child, selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        buffer, deadline = b"", time.monotonic() + bounds.seconds
        try:
            while True:
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    deadline = time.monotonic() + bounds.seconds
                    try:
                        yield json.loads(line)
                    except ValueError:
                        yield Exceeded("printed no result")
                        return
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    yield Exceeded(f"took longer than {bounds.seconds:g} s")
                    return
                chunk = os.read(child.stdout.fileno(), 1 << 16)
                if not chunk:
                    child.wait()
                    errors.seek(0)
                    yield _died(child.returncode, errors.read().decode("utf-8", "replace"), bounds)
                    return
                buffer += chunk
        finally:
            if child.poll() is None:
                child.kill()


def _died(returncode, stderr, bounds):
    error = (stderr.strip().splitlines() or [f"exit status {returncode}"])[-1]
    if "MemoryError" in error or returncode < 0:
        return Exceeded(f"needed more than {bounds.memory_bytes // 2**20} MiB ({error[:100]})")
    return Exceeded(f"failed: {error[:200]}")


def items_from(listed, start):
    """In the child: the items of the JSON file ``listed`` from index ``start`` on."""
    with open(listed, encoding="utf-8") as file:
        return json.load(file)[int(start):]


def limit_this_process():
    """In the child, first thing: cap its address space (and CPU) as the parent asked."""
    memory = int(os.environ.get(MEMORY_VARIABLE, "0"))
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    sys.setrecursionlimit(10_000)


def answer(result):
    """In the child: print ``result`` as one JSON line for the parent."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
