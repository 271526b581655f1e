"""A class on a real JupyterHub, for browser tests: `python -m grader.hub up` on temporary folders.

``HubClass`` starts the same command `make hub` runs (as root: real OS users from a roster,
LocalProcessSpawner, PostgreSQL, the exchange, formgrader as a hub service) with everything in
one temporary folder and a free port, and takes it all down again, users included. ``HubUser``
stands for one user's server behind the hub, so that ``browser_lab.LabPage`` drives it as it
drives a lone JupyterLab; ``HubPage`` adds the hub's login page.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from browser_lab import SLOW_MS, LabPage, free_port
from grader.course import REPO_ROOT
from grader.hub import accounts

# The venv by its real path: the grading sandbox binds the venv's resolved folder only, so a
# venv reached through a symlink (.venv -> elsewhere) is not found inside it.
PYTHON = str(Path(sys.prefix).resolve() / "bin" / "python")


class HubClass:
    """A hub for ``students`` ({id: name}) and ``instructor``, under a fresh folder in /tmp."""

    def __init__(self, students, instructor, course_id="backprop", release=("a1_backprop",)):
        self.students, self.instructor, self.course_id = dict(students), instructor, course_id
        self.extra_users = []  # added while it runs (``members``)
        # Under /tmp with mode 0755: the students, the instructor and postgres must enter it.
        self.base = Path(tempfile.mkdtemp(prefix="course-hub-"))
        os.chmod(self.base, 0o755)
        self.homes, self.exchange = self.base / "home", self.base / "exchange"
        self.state, self.course_dir = self.base / "state", self.base / "home" / instructor / course_id
        self.homes.mkdir()
        os.chmod(self.homes, 0o755)
        self.roster = self.base / "roster.csv"
        self.roster.write_text("student_id,name\n" + "".join(f"{s},{n}\n" for s, n in self.students.items()))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base / "hub.log"
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grader.hub", "up", "--roster", self.roster, "--instructor", instructor,
             "--course-id", course_id, "--home-root", self.homes, "--exchange", self.exchange,
             "--state", self.state, "--postgres", self.base / "postgres", "--port", str(self.port),
             "--release", *release],
            cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the hub exited:\n{self.log()[-4000:]}")
            if "The class is up" in self.log():
                return self
            time.sleep(0.5)
        raise TimeoutError(f"the hub is not up after {timeout} s:\n{self.log()[-4000:]}")

    def log(self):
        return self.log_path.read_text(errors="replace")

    @property
    def passwords(self):
        return json.loads((self.state / "passwords.txt").read_text())

    @property
    def settings(self):
        """COURSE_ID, COURSE_EXCHANGE, COURSE_DB_URL, COURSE_HUB_COURSE_DIR: the instructor's."""
        return json.loads((self.state / "settings.json").read_text())

    def home(self, user):
        return self.homes / user

    def user(self, name):
        return HubUser(self, name)

    def instructor_command(self, *command, timeout=900):
        """Run an instructor's command as grader/hub/course-command does (as root, hub settings)."""
        env = dict(os.environ, **self.settings,
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        if command[:3] == ("python", "-m", "grader"):
            command = (PYTHON, "-m", "grader", "--course", str(self.course_dir), *command[3:])
            cwd = REPO_ROOT
        else:
            cwd = self.course_dir
        result = subprocess.run(command, cwd=cwd, env=env, text=True, capture_output=True, timeout=timeout)
        subprocess.run(["chown", "-R", f"{self.instructor}:{self.instructor}", str(self.course_dir)], check=True)
        return result

    def members(self, *command):
        """``python -m grader.hub <command> ... --state`` (add, drop, reset-password, add-ta), as
        root; the password it printed, if any."""
        result = subprocess.run([PYTHON, "-m", "grader.hub", *command, "--state", str(self.state)],
                                cwd=REPO_ROOT, text=True, capture_output=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        if command[0] in ("add", "add-ta"):
            self.extra_users.append(command[1])
        _, _, password = result.stdout.strip().rpartition("password ")
        return password or None

    def stop(self):
        """SIGTERM to `python -m grader.hub`: it stops the hub and PostgreSQL (students' servers
        keep running, as on a real hub: ``remove`` stops them with their users)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()

    def remove(self):
        """Delete the users this hub made and its folder (after ``stop``)."""
        try:
            for user in [self.instructor, *self.students, *self.extra_users]:
                accounts.remove_user(user)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


class HubUser:
    """One user's server behind the hub, in the shape browser_lab.LabPage expects of a server."""

    def __init__(self, hub, name):
        self.hub, self.name = hub, name
        self.root = hub.home(name)  # the server's root: the user's home

    def url(self, path="/lab"):
        return f"{self.hub.url}/user/{self.name}{path}"

    def lab_url(self):
        return self.url("/lab")


class HubPage(LabPage):
    """A browser tab of one user on the hub: log in through the hub's own login page first."""

    def __init__(self, context, hub, shots, name):
        super().__init__(context, hub.user(name), shots, name)
        self.hub = hub

    def login(self, password=None):
        self.page.goto(f"{self.hub.url}/hub/login")
        self.page.locator("#username_input").fill(self.server.name)
        self.page.locator("#password_input").fill(password or self.hub.passwords[self.server.name])
        self.screenshot("login")
        self.page.locator("#login_submit").click()
        # The hub spawns the user's server, then lands in JupyterLab (Spawner.default_url).
        self.page.wait_for_url(f"**/user/{self.server.name}/lab**", timeout=SLOW_MS)

    def submit(self, assignment):
        """Submit again and again: the Assignment List keeps one item per assignment with a
        nested line per submission; wait for one more line. Returns the submissions' lines."""
        self.page.locator(".lm-TabBar-tab", has_text="Assignments").click()
        nested = "#submitted_assignments_list .nested_list_item"
        before = self.page.locator(nested).count()
        self.fetched_item(assignment).get_by_role("button", name="Submit").click()
        self.page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length > n",
                                    arg=[nested, before], timeout=SLOW_MS)
        return self.page.locator(nested).all_inner_texts()

    def fetch_feedback(self, assignment):
        """Assignment List > Fetch Feedback on the submitted assignment; wait for "view feedback"."""
        self.page.locator(".lm-TabBar-tab", has_text="Assignments").click()
        self.page.locator("#submitted_assignments_list .list_item", has_text=assignment) \
            .get_by_role("button", name="Fetch Feedback").first.click()
        self.page.locator("#submitted_assignments_list a", has_text="view feedback").first.wait_for(timeout=SLOW_MS)

    def kernel_ids(self):
        """The ids of the kernels running in this user's server, through its REST API."""
        response = self.page.request.get(self.server.url("/api/kernels"))
        assert response.ok, response.status
        return sorted(kernel["id"] for kernel in response.json())

    def login_refused(self, password):
        """Log in with ``password`` expecting the hub to refuse it."""
        self.expected_404.add("/hub/login")  # the refusal is a 403
        self.page.goto(f"{self.hub.url}/hub/login")
        self.page.locator("#username_input").fill(self.server.name)
        self.page.locator("#password_input").fill(password)
        self.page.locator("#login_submit").click()
        self.page.get_by_text("Invalid username or password").wait_for(timeout=SLOW_MS)
        return "/hub/login" in self.page.url

    def open_refused(self, url):
        """Open ``url`` expecting the hub to refuse it; its HTTP status."""
        response = self.page.goto(url)
        return response.status
