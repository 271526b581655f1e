"""The class while it runs: add or drop a student, reset a password, add a teaching assistant.

    python -m grader.hub add <student_id> "<name>"    python -m grader.hub drop <student_id>
    python -m grader.hub reset-password <user>        python -m grader.hub add-ta <user>

Each is one command, as root on the hub's machine, through the hub's REST API with the token of
the ``course-roster`` service (``jupyterhub_config.py``): no restart, and every other student's
server and kernels keep running. Each also updates what a restart reads, so it lasts: the roster
file the hub was started with (students), ``<state>/tas.json`` (teaching assistants) and the
passwords of the local demo's login (``<state>/passwords.*``).

- **add**: the OS user, the roster's row, the gradebook's student, a password, the hub's user
  (in the ``nbgrader-<course>`` group).
- **drop**: the hub's user is deleted (their server stopped), their row and password go; the OS
  user and home stay, with their work, until the end of term; the gradebook keeps their grades.
- **add-ta**: the OS user, a password, the hub's user in ``formgrade-<course>``: formgrader,
  not an admin (no access to students' servers), no roster row, no gradebook entry.
- **reset-password**: a new password (roster login only; with PAM it is ``passwd <user>``, with
  single sign-on the university's).
"""
import csv
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from .. import roster
from ..course import Course
from . import accounts

VENV_BIN = Path(sys.executable).parent
TOKEN_FILE = "roster-api-token"
HUB_FILE = "hub.json"  # what these commands need of the running hub: written by `up`
TAS_FILE = "tas.json"


class MembersError(RuntimeError):
    pass


class Hub:
    """The running hub as ``up`` left it in ``state``: its API, roster, settings and passwords."""

    def __init__(self, state):
        self.state = Path(state)
        try:
            self.info = json.loads((self.state / HUB_FILE).read_text())
            self.settings = json.loads((self.state / "settings.json").read_text())
            self.token = (self.state / TOKEN_FILE).read_text().strip()
        except OSError as error:
            raise MembersError(f"no hub prepared in {self.state} ({error}): start it with `make hub`") from None
        self.course_id = self.settings["COURSE_ID"]

    def api(self, method, path, body=None):
        """One hub REST API call; the decoded JSON answer (None when empty)."""
        request = urllib.request.Request(
            self.info["api_url"] + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                answer = response.read()
        except urllib.error.HTTPError as error:
            raise MembersError(f"hub API {method} {path}: {error.code} {error.read()[:300]!r}") from None
        return json.loads(answer) if answer.strip() else None

    def hub_user_exists(self, name):
        try:
            self.api("GET", f"/users/{name}")
            return True
        except MembersError:
            return False

    def add_hub_user(self, name, group):
        if not self.hub_user_exists(name):
            self.api("POST", f"/users/{name}")
        self.api("POST", f"/groups/{group}/users", {"users": [name]})

    def password(self, user, renew=False):
        """Give ``user`` a password (a new one with ``renew``) if the hub logs in with the roster's."""
        if self.info["auth"] != "roster":
            return None
        clear = self.state / "passwords.txt"
        users = accounts.password_users(clear)
        return accounts.make_passwords(users + [user] * (user not in users), self.state / "passwords.json",
                                       clear, renew={user} if renew else ())[user]

    def forget_password(self, user):
        clear = self.state / "passwords.txt"
        users = [u for u in accounts.password_users(clear) if u != user]
        if self.info["auth"] == "roster":
            accounts.make_passwords(users, self.state / "passwords.json", clear)

    def env(self):
        return dict(os.environ, **self.settings, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def _roster_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames or ["student_id", "name"], list(reader)


def _write_roster(path, fields, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def add_student(hub, student_id, name):
    """Returns the new student's password (None unless the hub uses the roster's login)."""
    if not roster.USER_NAME.match(student_id):
        raise MembersError(f"{student_id!r} is not a valid user name (a-z, 0-9, _ and -, a letter first)")
    path = hub.info["roster"]
    fields, rows = _roster_rows(path)
    if not any(row["student_id"].strip() == student_id for row in rows):
        rows.append({**{f: "" for f in fields}, "student_id": student_id, "name": name})
        _write_roster(path, fields, rows)
    accounts.ensure_user(student_id, hub.info["home_root"])
    first, _, last = name.partition(" ")
    course_dir = hub.settings["COURSE_HUB_COURSE_DIR"]
    Course(course_dir).nbgrader("db", "student", "add", student_id, f"--first-name={first}",
                                f"--last-name={last}", env=hub.env())
    instructor = hub.settings["COURSE_INSTRUCTOR"]
    subprocess.run(["chown", "-R", f"{instructor}:{instructor}", course_dir], check=True)  # its log
    password = hub.password(student_id)
    hub.add_hub_user(student_id, f"nbgrader-{hub.course_id}")
    return password


def drop_student(hub, student_id):
    if hub.hub_user_exists(student_id):
        hub.api("DELETE", f"/users/{student_id}")
    path = hub.info["roster"]
    fields, rows = _roster_rows(path)
    _write_roster(path, fields, [row for row in rows if row["student_id"].strip() != student_id])
    hub.forget_password(student_id)


def add_ta(hub, user):
    """Returns the assistant's password (None unless the hub uses the roster's login)."""
    if not roster.USER_NAME.match(user):
        raise MembersError(f"{user!r} is not a valid user name")
    tas_path = hub.state / TAS_FILE
    tas = json.loads(tas_path.read_text()) if tas_path.exists() else []
    if user not in tas:
        tas_path.write_text(json.dumps(tas + [user]))
    accounts.ensure_user(user, hub.info["home_root"])
    password = hub.password(user)
    hub.add_hub_user(user, f"formgrade-{hub.course_id}")
    return password


def reset_password(hub, user):
    if hub.info["auth"] != "roster":
        raise MembersError(f"the hub logs in with {hub.info['auth']}: reset the password there "
                           "(PAM: passwd <user>)")
    if user not in accounts.password_users(hub.state / "passwords.txt"):
        raise MembersError(f"{user} has no password here: not in the class")
    return hub.password(user, renew=True)
