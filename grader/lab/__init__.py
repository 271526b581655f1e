"""JupyterLab for the course, as a student or as the instructor.

Installing nbgrader switches on all its extensions, formgrader and create-assignment included,
for everyone who uses the environment. Each role here is a Jupyter configuration folder next to
this file, put first on the Jupyter config path (JUPYTER_CONFIG_PATH) for one launch only, so
the environment itself is left as it is:

  student/     Assignment List and Validate. Off: formgrader, create-assignment, course list
               (server extensions in jupyter_server_config.d/, lab plugins in labconfig/).
               Its nbgrader_config.py adds the student's name (COURSE_STUDENT_ID).
  instructor/  Formgrader on the course; the server's root is the course root, as formgrader needs.

    python -m grader.lab student [--student alice] [jupyter lab options...]
    python -m grader.lab instructor [jupyter lab options...]
"""
import argparse
import os
import sys
from pathlib import Path

COURSE_ROOT = Path(__file__).resolve().parent.parent.parent
ROLES = ("student", "instructor")


def config_dir(role, course_root=COURSE_ROOT):
    """The Jupyter configuration folder of ``role`` in the course at ``course_root``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    return Path(course_root) / "grader" / "lab" / role


def default_root(role, course_root=COURSE_ROOT):
    """What the server shows: the student's notebooks, or the whole course for formgrader."""
    return Path(course_root) / "notebooks" if role == "student" else Path(course_root)


def lab_environment(role, course_root=COURSE_ROOT, student_id=None, base=None):
    """The environment for a JupyterLab server of ``role``: ``base`` (os.environ) plus the role."""
    env = dict(os.environ if base is None else base)
    config_path = [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(config_dir(role, course_root)), *config_path])
    # nbgrader runs `alembic` from PATH when formgrader creates the gradebook.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if student_id:
        env["COURSE_STUDENT_ID"] = student_id
    return env


def lab_command(role, root=None, course_root=COURSE_ROOT, extra_args=()):
    """The command line that starts JupyterLab for ``role`` with ``root`` as its root folder."""
    root = Path(root) if root else default_root(role, course_root)
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:  # containers and CI run as root; Jupyter refuses that unless told
        command.append("--ServerApp.allow_root=True")
    return command + list(extra_args)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m grader.lab", description=__doc__.splitlines()[0], allow_abbrev=False,
        epilog="Other options go to `jupyter lab` as they are.")
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("--student", help="the student's name in the exchange (default: the OS user)")
    args, jupyter_args = parser.parse_known_args(argv)
    if args.student and args.role != "student":
        parser.error("--student is for the student role")
    root = default_root(args.role)
    root.mkdir(exist_ok=True)
    command = lab_command(args.role, root, extra_args=jupyter_args)
    os.execve(command[0], command, lab_environment(args.role, student_id=args.student))
