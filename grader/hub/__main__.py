"""`make hub`: the course on a JupyterHub on this machine, for a class from a roster (run as root).

    python -m grader.hub up [--roster grader/roster.csv] [--instructor instructor] [--port 8000]

In order: one OS user per student and one for the instructor (useradd); the nbgrader exchange
(mode 0777, as nbgrader wants its root); PostgreSQL for the gradebook (Debian's server on a Unix
socket, data in <state>/postgres); the instructor's course (a copy of this repository's
solutions and release in the instructor's home, owned by them); the roster into the gradebook;
the assignments named by --release generated and released (inbound gets the sticky bit, so no
student can rename or remove another's submission); then JupyterHub with
grader/hub/jupyterhub_config.py. It prints where to log in and each user's password (the local
demo's login), and runs until Ctrl-C, then stops the hub and PostgreSQL. Students' servers keep
running (``cleanup_servers`` off): the next ``up`` finds them again, kernels and all.

The class while it runs (``members.py``), without a restart:

    python -m grader.hub add <student_id> "<name>" | drop <student_id> | reset-password <user> | add-ta <user>

The instructor's commands then run as root with the hub's settings (<state>/course.env):
grader/hub/course-command (see grader/lab/README.md, "A semester on the hub").
"""
import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..course import REPO_ROOT, Course
from .. import roster
from . import accounts, members
from .exchange import make_exchange_root, protect_inbound
from .postgres import PostgresServer

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
DEFAULT_STATE = "/srv/nbgrader/hub"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parser():
    top = argparse.ArgumentParser(prog="python -m grader.hub", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    for name, what, argument in (("add", "add a student while the class runs", "student_id"),
                                 ("drop", "drop a student (their server stops; their files stay)", "student_id"),
                                 ("reset-password", "a new password for a user (the roster's login)", "user"),
                                 ("add-ta", "a teaching assistant: formgrader, no admin rights", "user")):
        m = commands.add_parser(name, help=what)
        m.add_argument(argument.replace("-", "_"))
        if name == "add":
            m.add_argument("name", help='"First Last"')
        m.add_argument("--state", default=DEFAULT_STATE, help="the running hub's own files")
    for name, what in (("backup", "the gradebook into <to>/<course>-<date>.dump (nightly, from cron)"),
                       ("restore", "the gradebook as a backup file saved it (everything since is lost)")):
        b = commands.add_parser(name, help=what)
        b.add_argument("--to" if name == "backup" else "dump", **({"default": "/srv/nbgrader/backups"}
                                                                 if name == "backup" else {}))
        b.add_argument("--postgres", default="/srv/nbgrader/postgres", help="the gradebook's server")
        b.add_argument("--course-id", default=os.environ.get("COURSE_ID", "backprop"))
    p = commands.add_parser("up", help="prepare the machine and run the hub")
    p.add_argument("--roster", default=str(roster.default_path(REPO_ROOT)),
                   help="the class (default grader/roster.csv, else grader/roster.example.csv)")
    p.add_argument("--instructor", default="instructor")
    p.add_argument("--course-id", default=os.environ.get("COURSE_ID", "backprop"))
    p.add_argument("--course-dir", help="the instructor's course (default ~instructor/<course id>)")
    p.add_argument("--home-root", default="/home", help="where new users' homes go")
    p.add_argument("--exchange", default="/srv/nbgrader/exchange")
    p.add_argument("--state", default=DEFAULT_STATE, help="the hub's own files, root only")
    p.add_argument("--postgres", default="/srv/nbgrader/postgres", help="the gradebook's server")
    p.add_argument("--release", nargs="*", default=["a1_backprop"],
                   help="assignments to release now (already released ones are left alone)")
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--auth", choices=["roster", "pam", "oauth"], default="roster")
    return top


def run(*command, **kwargs):
    return subprocess.run([str(c) for c in command], check=True, text=True, capture_output=True, **kwargs)


def chown_tree(path, user):
    run("chown", "-R", f"{user}:{user}", path)


def open_python_to_users():
    """Students' servers run the course's Python as the students: every folder on the way to the
    interpreter and the venv must be enterable by others (o+x; not listable). A venv made from a
    Python under /root (pyenv) is not: add o+x there, and say so."""
    changed = []
    for target in {Path(os.path.realpath(sys.executable)), VENV_BIN.resolve(), REPO_ROOT.resolve()}:
        for folder in reversed(target.parents):
            mode = os.stat(folder).st_mode
            if not mode & 0o001:
                os.chmod(folder, mode | 0o001)
                changed.append(folder)
    for folder in changed:
        print(f"note: {folder} made enterable by others (o+x, not listable) so that students can "
              "run the course's Python; install the venv under /opt or /srv to avoid this")


def prepare(args):
    """Everything before JupyterHub starts; returns (environment for the hub, passwords, db)."""
    students = roster.read_roster(args.roster)
    open_python_to_users()
    state, exchange = Path(args.state), Path(args.exchange)
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)  # the hub's database, cookie secret, passwords and gradebook URL
    print(f"users: {args.instructor} (instructor) and {len(students)} students from {args.roster}")
    accounts.ensure_user(args.instructor, args.home_root)
    for student in students:
        accounts.ensure_user(student.id, args.home_root)
    passwords = {}
    if args.auth == "roster":
        passwords = accounts.make_passwords([args.instructor] + [s.id for s in students],
                                            state / "passwords.json", state / "passwords.txt")

    make_exchange_root(exchange)

    db = PostgresServer(args.postgres, database=args.course_id, role=args.course_id).start()
    course_dir = Path(args.course_dir or Path(args.home_root) / args.instructor / args.course_id)
    if not (course_dir / "nbgrader_config.py").exists():
        Course().copy_to(course_dir)
    if not (course_dir / "grader" / "calendar.csv").exists():  # the course's to edit from now on
        shutil.copy(REPO_ROOT / "grader" / "calendar.csv", course_dir / "grader" / "calendar.csv")
    env = dict(os.environ, COURSE_ID=args.course_id, COURSE_EXCHANGE=str(exchange),
               COURSE_DB_URL=db.url, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    course = Course(course_dir)
    for student in students:
        first, last = student.first_last
        course.nbgrader("db", "student", "add", student.id, f"--first-name={first}",
                        f"--last-name={last}", env=env)
    for assignment in args.release:
        if (exchange / args.course_id / "outbound" / assignment).exists():
            continue
        course.nbgrader("generate_assignment", assignment, "--force", env=env)
        course.nbgrader("release_assignment", assignment, env=env)
        print(f"released {assignment} to {exchange / args.course_id / 'outbound'}")
    protect_inbound(exchange, args.course_id)
    chown_tree(course_dir, args.instructor)

    hub_env = dict(env, COURSE_ROSTER=str(Path(args.roster).resolve()), COURSE_INSTRUCTOR=args.instructor,
                   COURSE_HUB_COURSE_DIR=str(course_dir), COURSE_HUB_STATE=str(state),
                   COURSE_HUB_IP=args.ip, COURSE_HUB_PORT=str(args.port), COURSE_HUB_AUTH=args.auth,
                   COURSE_HUB_API_PORT=str(free_port()), COURSE_HUB_PROXY_API_PORT=str(free_port()),
                   COURSE_HUB_SERVICE_PORT=str(free_port()))
    course_env = {k: hub_env[k] for k in ("COURSE_ID", "COURSE_EXCHANGE", "COURSE_DB_URL",
                                          "COURSE_HUB_COURSE_DIR", "COURSE_INSTRUCTOR", "COURSE_ROSTER")}
    env_file = state / "course.env"
    env_file.touch(mode=0o600)
    env_file.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in course_env.items()))
    (state / "settings.json").write_text(json.dumps(course_env, indent=1))
    token = state / members.TOKEN_FILE  # the roster commands' key to the hub's API
    if not token.exists():
        token.touch(mode=0o600)
        token.write_text(secrets.token_hex(32))
    (state / members.HUB_FILE).write_text(json.dumps({
        "api_url": f"http://127.0.0.1:{hub_env['COURSE_HUB_API_PORT']}/hub/api",  # the hub itself
        "roster": str(Path(args.roster).resolve()),
        "auth": args.auth, "home_root": str(args.home_root)}, indent=1))
    return hub_env, passwords, db


def wait_ready(url, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url + "/hub/api/", timeout=5) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def stop_leftover_proxy(state):
    """A hub that dies while starting leaves its proxy running: stop it by the pid file."""
    pid_file = state / "jupyterhub-proxy.pid"
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"configurable-http-proxy" in cmdline:
        os.kill(pid, signal.SIGTERM)


def up(args):
    if not (HERE / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        print("configurable-http-proxy missing: `make hub` installs it (npm ci in grader/hub)",
              file=sys.stderr)
        return 1
    hub_env, passwords, db = prepare(args)
    stopping = []
    hub = subprocess.Popen([VENV_BIN / "jupyterhub", "-f", HERE / "jupyterhub_config.py"],
                           cwd=args.state, env=hub_env)

    def stop(signum, _frame):
        stopping.append(signum)
        if hub.poll() is None:
            hub.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        url = f"http://{args.ip}:{args.port}"
        if wait_ready(url, hub):
            lines = [f"\nThe class is up: {url}/hub/login",
                     f"formgrader (instructor only): {url}/services/{args.course_id}/formgrader"]
            lines += [f"  {user:<16} {password}" for user, password in passwords.items()]
            lines.append(f"instructor's commands: sudo grader/hub/course-command ... "
                         f"(settings in {args.state}/course.env); Ctrl-C stops the class")
            print("\n".join(lines), flush=True)
        while hub.poll() is None:
            try:
                hub.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
    finally:
        if hub.poll() is None:
            hub.terminate()
            try:
                hub.wait(60)
            except subprocess.TimeoutExpired:
                hub.kill()
        stop_leftover_proxy(Path(args.state))
        db.stop()
        print("hub and PostgreSQL stopped", flush=True)
    return 0


def change_members(args):
    """add, drop, reset-password, add-ta on the running hub (members.py); prints the password."""
    try:
        hub = members.Hub(args.state)
        if args.command == "add":
            password = members.add_student(hub, args.student_id, args.name)
            who = args.student_id
        elif args.command == "drop":
            members.drop_student(hub, args.student_id)
            print(f"dropped {args.student_id}: their server is stopped; their home stays until the end of term")
            return 0
        elif args.command == "add-ta":
            password, who = members.add_ta(hub, args.user), args.user
        else:
            password, who = members.reset_password(hub, args.user), args.user
    except (members.MembersError, roster.RosterError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{who}: {args.command} done" + (f"; password {password}" if password else ""))
    return 0


def main(argv=None):
    args = parser().parse_args(argv)
    if os.geteuid() != 0:
        print("the hub's commands create users and run their servers as them: run them as root "
              "(sudo, where there is one)", file=sys.stderr)
        return 1
    if args.command in ("backup", "restore"):
        return backup_or_restore(args)
    return up(args) if args.command == "up" else change_members(args)


def backup_or_restore(args):
    """pg_dump / pg_restore of the running hub's gradebook (PostgresServer.dump, .restore)."""
    server = PostgresServer(args.postgres, database=args.course_id, role=args.course_id)
    try:
        if args.command == "backup":
            folder = Path(args.to)
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            print(server.dump(folder / f"{args.course_id}-{time.strftime('%Y-%m-%d')}.dump"))
        else:
            server.restore(args.dump)
            print(f"{args.course_id} restored from {args.dump}")
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"error: {error} {getattr(error, 'stderr', '') or ''}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
