"""The exchange as a student would attack it (as root: real OS users, commands run as them).

The set-up `make hub` makes: each student an OS user with a 0700 home, the instructor's course in
the instructor's 0700 home, the exchange at a root of its own with nbgrader's permissions (and the
sticky bit on inbound, grader/hub/exchange.py), the gradebook on PostgreSQL behind a password.
Students B and A fetch and submit with stock `nbgrader` as themselves; then A tries to list
inbound, read, rename, overwrite or delete B's submission, write into outbound and feedback,
read the instructor's course and the gradebook. Each attempt fails with a permission error and
B's submission is byte for byte what B submitted.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from grader.course import REPO_ROOT, Course
from grader.hub import accounts
from grader.hub.__main__ import open_python_to_users
from grader.hub.exchange import make_exchange_root, protect_inbound
from postgres_server import postgres  # noqa: F401 (the fixture)

COURSE_ID, ASSIGNMENT, NOTEBOOK = "backprop", "a1_backprop", "backprop"
A, B, INSTRUCTOR = "bpexalice", "bpexbob", "bpexteacher"
VENV_BIN = Path(sys.prefix).resolve() / "bin"  # students run the venv by its real path

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason=(
    "the exchange test creates OS users (useradd) and runs commands as them: it needs root"))]


def as_user(user, *command, cwd=None, env=None):
    """Run ``command`` as ``user`` (runuser, no capabilities), in their home unless ``cwd``."""
    home = os.path.expanduser(f"~{user}")
    environment = {"HOME": home, "USER": user, "PATH": f"{VENV_BIN}:/usr/bin:/bin", "LANG": "C.UTF-8",
                   **(env or {})}
    return subprocess.run(["runuser", "-u", user, "--", "env", "-i",
                           *[f"{k}={v}" for k, v in environment.items()], *command],
                          cwd=cwd or home, text=True, capture_output=True, timeout=300)


ATTEMPT = textwrap.dedent("""
    import json, os, shutil, sys
    def attempt(name, action):
        try:
            action()
            return name, "succeeded"
        except Exception as error:
            return name, type(error).__name__
    def write(path, text="x"):
        with open(path, "w") as f:
            f.write(text)
    def read(path):
        with open(path, "rb") as f:
            return f.read()
    p = json.loads(sys.argv[1])
    results = dict(attempt(name, action) for name, action in [
        ("list inbound", lambda: os.listdir(p["inbound"])),
        ("list feedback", lambda: os.listdir(p["feedback"])),
        ("read B's home", lambda: os.listdir(p["b_home"])),
        ("read B's submission cache", lambda: read(p["b_cache_notebook"])),
        ("guess B's submission", lambda: read(p["guessed_notebook"])),
        ("rename B's submission", lambda: os.rename(p["b_submission"], p["inbound"] + "/stolen")),
        ("remove B's submission", lambda: os.rmdir(p["b_submission"])),
        ("write into outbound", lambda: write(p["outbound"] + "/" + "a1_backprop/backprop.ipynb")),
        ("add to outbound", lambda: write(p["outbound"] + "/new.txt")),
        ("write into feedback", lambda: write(p["feedback"] + "/0123abcd.html")),
        ("read the solutions", lambda: read(p["solution"])),
        ("list the course", lambda: os.listdir(p["course"])),
        ("read the gradebook", lambda: read(p["gradebook"])),
    ])
    print(json.dumps(results))
""")


@pytest.fixture(scope="module")
def classroom(postgres):  # noqa: F811
    """Users, the instructor's course, the exchange; B and A have fetched and submitted."""
    for user in (A, B, INSTRUCTOR):  # left behind by a killed run
        accounts.remove_user(user)
    open_python_to_users()  # students run the course's Python (a venv under /root on this machine)
    base = Path(tempfile.mkdtemp(prefix="course-exchange-"))
    os.chmod(base, 0o755)
    homes = base / "home"
    homes.mkdir(mode=0o755)
    try:
        for user in (A, B, INSTRUCTOR):
            accounts.ensure_user(user, homes)
        exchange = make_exchange_root(base / "exchange")
        course = Course().copy_to(homes / INSTRUCTOR / COURSE_ID)
        env = {"COURSE_EXCHANGE": str(exchange), "COURSE_ID": COURSE_ID}
        course.nbgrader("generate_assignment", ASSIGNMENT, "--force", env=env)
        course.nbgrader("release_assignment", ASSIGNMENT, env=env)
        protect_inbound(exchange, COURSE_ID)
        subprocess.run(["chown", "-R", f"{INSTRUCTOR}:{INSTRUCTOR}", course.root], check=True)
        student_env = dict(env, JUPYTER_CONFIG_PATH=str(REPO_ROOT / "grader" / "lab" / "student"))
        for student in (B, A):
            for step in ("fetch_assignment", "submit"):
                done = as_user(student, "nbgrader", step, ASSIGNMENT, env=student_env)
                assert done.returncode == 0, f"{student} {step}: {done.stderr[-2000:]}"
        yield {"base": base, "exchange": exchange, "course": course, "env": env}
    finally:
        for user in (A, B, INSTRUCTOR):
            accounts.remove_user(user)
        shutil.rmtree(base, ignore_errors=True)


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_student_cannot_reach_another_students_submission_or_the_course(classroom, postgres):  # noqa: F811
    exchange, course = classroom["exchange"], classroom["course"]
    inbound = exchange / COURSE_ID / "inbound"
    assert oct(inbound.stat().st_mode & 0o7777) == "0o3733"  # nbgrader's 2733, plus sticky
    (b_submission,) = inbound.glob(f"{B}+{ASSIGNMENT}+*")
    assert len(b_submission.name.rsplit("+", 1)[1]) == 12  # nbgrader's random part of the name
    before = snapshot(b_submission)
    assert f"{NOTEBOOK}.ipynb" in before
    b_home = Path(os.path.expanduser(f"~{B}"))
    (b_cache,) = (b_home / ".local/share/jupyter/nbgrader_cache" / COURSE_ID).glob(f"{B}+{ASSIGNMENT}+*")
    guessed = b_submission.name.rsplit("+", 1)[0] + "+AAAAAAAAAAAA"
    paths = {
        "inbound": str(inbound), "feedback": str(exchange / COURSE_ID / "feedback"),
        "outbound": str(exchange / COURSE_ID / "outbound"), "b_home": str(b_home),
        "b_cache_notebook": str(b_cache / f"{NOTEBOOK}.ipynb"),
        "guessed_notebook": str(inbound / guessed / f"{NOTEBOOK}.ipynb"),
        # A is told the real name (say it leaked): renaming or removing it must still fail.
        "b_submission": str(b_submission),
        "solution": str(course.solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb"),
        "course": str(course.root), "gradebook": str(course.gradebook_file),
    }
    # nbgrader creates feedback/ at the first release_feedback; make it as that would.
    feedback = exchange / COURSE_ID / "feedback"
    feedback.mkdir(exist_ok=True)
    os.chmod(feedback, 0o711)
    done = as_user(A, str(VENV_BIN / "python"), "-c", ATTEMPT, json.dumps(paths))
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    # A cannot see inbound's names, so a guessed name does not exist; everything else is refused.
    assert results.pop("guess B's submission") == "FileNotFoundError", results
    assert results == {name: "PermissionError" for name in results}, results
    assert snapshot(b_submission) == before, "B's submission changed"

    # The gradebook on PostgreSQL: A reaches the socket, but has no password.
    database = as_user(A, str(postgres.bin / "psql"), "-h", str(postgres.socket_dir), "-p", str(postgres.port),
                       "-U", postgres.role, "-d", postgres.database, "-w", "-c", "SELECT 1")
    assert database.returncode != 0 and "password" in database.stderr, database.stderr


def test_a_student_cannot_replace_or_forge_another_students_submission(classroom):
    """Even knowing B's folder name (nbgrader makes it 0777), A's edits and a submission A
    forges in B's name must not become B's grade: the instructor's collect takes B's own."""
    exchange, course = classroom["exchange"], classroom["course"]
    inbound = exchange / COURSE_ID / "inbound"
    (b_submission,) = inbound.glob(f"{B}+{ASSIGNMENT}+*")
    original = (b_submission / f"{NOTEBOOK}.ipynb").read_bytes()
    forged = inbound / f"{B}+{ASSIGNMENT}+2999-01-01 00:00:00.000000 UTC+forgedforged"
    script = textwrap.dedent(f"""
        import os, shutil
        try:
            os.unlink({str(b_submission / (NOTEBOOK + '.ipynb'))!r})
            with open({str(b_submission / (NOTEBOOK + '.ipynb'))!r}, 'w') as f:
                f.write('{{"cells": [], "metadata": {{}}, "nbformat": 4, "nbformat_minor": 5}}')
            print("replaced")
        except OSError as error:
            print("refused", type(error).__name__)
        os.mkdir({str(forged)!r})
        shutil.copy({str(b_submission / 'timestamp.txt')!r}, {str(forged)!r})
        with open({str(forged / 'timestamp.txt')!r}, 'w') as f:
            f.write('2999-01-01 00:00:00.000000 UTC')
        with open({str(forged / (NOTEBOOK + '.ipynb'))!r}, 'w') as f:
            f.write('{{"cells": [], "metadata": {{}}, "nbformat": 4, "nbformat_minor": 5}}')
    """)
    done = as_user(A, str(VENV_BIN / "python"), "-c", script)
    assert done.returncode == 0, done.stderr
    collected = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "grader", "--course", str(course.root), "collect", ASSIGNMENT,
         "--exchange"], cwd=REPO_ROOT, env=dict(os.environ, **classroom["env"], PATH=f"{VENV_BIN}:{os.environ['PATH']}"),
        text=True, capture_output=True, timeout=300)
    assert collected.returncode == 0, collected.stderr[-2000:]
    got = (course.submitted / B / ASSIGNMENT / f"{NOTEBOOK}.ipynb").read_bytes()
    assert got == original, (
        "B's collected notebook is not the one B submitted: collect took a folder or file that "
        f"another student ({A}) wrote in B's name (A's script said: {done.stdout.strip()})")
