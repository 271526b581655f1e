"""Drive JupyterLab the way a student does: a real server, headless Debian Chromium, Playwright.

``LabServer`` starts ``python -m grader.lab``'s command for a role on a free localhost port with
its own token and its own Jupyter config, data and runtime folders, and stops it (its kernels
with it). ``LabPage`` is one browser tab on such a server, with the steps a student takes; it
records every JavaScript error of the page, and a screenshot per step.
"""
import json
import re
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from grader import lab

CHROMIUM = Path("/usr/bin/chromium")
# The flags this closed network needs: without the background-networking ones Chromium keeps
# trying to reach Google's hosts and has its connections refused.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# A fresh kernel imports torch (2.5-3 s of CPU); validate runs the whole notebook once more.
SLOW_MS = 180_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """A JupyterLab server of ``role`` ('student' or 'instructor') on ``root``, in ``home``."""

    def __init__(self, role, course_root, root, home, student_id=None):
        self.role, self.root, self.home = role, Path(root), Path(home)
        self.token = secrets.token_hex(16)
        self.port = free_port()
        for folder in ("config", "data", "runtime"):
            (self.home / folder).mkdir(parents=True, exist_ok=True)
        env = lab.lab_environment(role, course_root=course_root, student_id=student_id)
        # Nothing from the developer's own ~/.jupyter; an nbgrader cache per student.
        env.update(JUPYTER_CONFIG_DIR=str(self.home / "config"), JUPYTER_DATA_DIR=str(self.home / "data"),
                   JUPYTER_RUNTIME_DIR=str(self.home / "runtime"))
        command = lab.lab_command(role, self.root, course_root=course_root, extra_args=[
            "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
            f"--IdentityProvider.token={self.token}"])
        self.log_path = self.home / "server.log"
        self._log = open(self.log_path, "w")
        # cwd: nbgrader's Validate reads nbgrader_config.py from the server's working directory.
        self.process = subprocess.Popen(command, cwd=self.root, env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=120):
        """Wait until the server answers; then ``self.port`` is the port it really listens on."""
        info = self.home / "runtime" / f"jpserver-{self.process.pid}.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab ({self.role}) exited:\n{self.log_path.read_text()[-3000:]}")
            if info.exists():
                try:
                    self.port = json.loads(info.read_text())["port"]
                    if self.get("/api/status")[0] == 200:
                        return self
                except (ValueError, KeyError, OSError):
                    pass  # info file half-written, or the server not accepting yet
            time.sleep(0.2)
        raise TimeoutError(f"JupyterLab ({self.role}) not ready:\n{self.log_path.read_text()[-3000:]}")

    def url(self, path="/lab"):
        return f"http://127.0.0.1:{self.port}{path}"

    def lab_url(self):
        """Where a browser opens JupyterLab on this server (the token logs it in)."""
        return self.url(f"/lab?token={self.token}")

    def get(self, path):
        """(status, body) of an authenticated GET, outside the browser."""
        request = urllib.request.Request(self.url(path), headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def stop(self):
        """SIGTERM: the server shuts its kernels down, then exits (see ``stop_all``)."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()

    @staticmethod
    def stop_all(servers):
        """Stop several servers at once: signal them all, then wait for each."""
        for server in servers:
            if server.process.poll() is None:
                server.process.terminate()
        for server in servers:
            server.stop()


class LabPage:
    """One student's browser tab on a LabServer, with screenshots in ``shots`` named by step."""

    def __init__(self, context, server, shots, name):
        self.server, self.shots, self.name = server, Path(shots), name
        self.page = context.new_page()
        self.page.set_default_timeout(60_000)
        # Paths opened on purpose to see them refused (404, or 403 on a hub).
        self.js_errors, self.expected_404 = [], set()
        self.page.on("pageerror", lambda error: self.js_errors.append(f"pageerror: {error}"))
        self.page.on("console", self._on_console)
        self._step = 0

    def _on_console(self, message):
        if message.type != "error":
            return
        url = message.location.get("url", "")
        # A page we opened on purpose to see it refused (formgrader) logs its own 404 (or 403).
        if re.search(r"\b40[34]\b", message.text) and any(path in url for path in self.expected_404):
            return
        self.js_errors.append(f"console.error: {message.text} ({url})")

    def screenshot(self, step):
        self._step += 1
        self.page.screenshot(path=self.shots / f"{self.name}-{self._step:02d}-{step}.png")

    # --- JupyterLab -------------------------------------------------------------------------
    def open_lab(self):
        self.page.goto(self.server.lab_url())
        self.page.locator(".jp-DirListing-content").wait_for()
        self.page.locator(".lm-MenuBar-item", has_text="Nbgrader").wait_for()

    def menu(self, title):
        """Open the menu-bar menu ``title``; returns the labels of its visible items."""
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(f"^{title}$")).click()
        menu = self.page.locator(".lm-Menu").last
        menu.wait_for()
        return [label.strip() for label in menu.locator(".lm-Menu-itemLabel").all_inner_texts()]

    def click_menu_item(self, label):
        self.page.locator(".lm-Menu .lm-Menu-item", has_text=re.compile(f"^{re.escape(label)}")).first.click()

    # --- the Assignment List ------------------------------------------------------------------
    def open_assignment_list(self):
        self.menu("Nbgrader")
        self.click_menu_item("Assignment List")
        self.page.locator("#released_assignments_list_loading").wait_for(state="hidden")

    def fetch(self, assignment):
        self.page.locator("#released_assignments_list .list_item", has_text=assignment) \
            .get_by_role("button", name="Fetch").click()
        self.fetched_item(assignment).wait_for()

    def fetched_item(self, assignment):
        return self.page.locator("#fetched_assignments_list > .list_item", has_text=assignment)

    def open_fetched_notebook(self, assignment, notebook):
        item = self.fetched_item(assignment)
        item.locator("a.assignment-notebooks-link").click()
        item.locator(".nested_list_item a", has_text=re.compile(f"^{notebook}$")).click()
        self.notebook = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        self.notebook.locator(".jp-Notebook-cell").first.wait_for()
        # The kernel has started (or is starting) when the status bar names it.
        self.page.locator(".jp-StatusBar-Widget", has_text="Python 3").first.wait_for()

    def submit(self, assignment):
        self.page.locator(".lm-TabBar-tab", has_text="Assignments").click()
        submitted = self.page.locator("#submitted_assignments_list > .list_item")
        before = submitted.count()
        self.fetched_item(assignment).get_by_role("button", name="Submit").click()
        self.page.wait_for_function(
            "n => document.querySelectorAll('#submitted_assignments_list > .list_item').length > n",
            arg=before, timeout=SLOW_MS)
        return submitted.all_inner_texts()

    # --- the notebook ---------------------------------------------------------------------------
    def type_into_cell(self, index, source):
        """Replace the source of cell ``index`` (0-based, as in the .ipynb) with ``source``."""
        editor = self.notebook.locator(".jp-Notebook-cell").nth(index).locator(".cm-content")
        editor.scroll_into_view_if_needed()
        editor.fill(source)  # select all, then insert the text (no auto-indent on the way)

    def save(self):
        dirty = self.page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty")
        dirty.wait_for()  # the edits have reached the notebook's model
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("Control+s")
        dirty.wait_for(state="detached")

    def run_all(self):
        """Run > Run All Cells, then wait until no cell is queued or running."""
        self.menu("Run")
        self.click_menu_item("Run All Cells")
        self.page.wait_for_function("""() => {
            const prompts = [...document.querySelectorAll(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt')]
                .map(p => p.textContent);
            return prompts.length > 0 && /\\[\\d+\\]/.test(prompts[0]) && !prompts.some(t => t.includes('*'));
        }""", timeout=SLOW_MS)

    def run_cell(self, index):
        """Select cell ``index`` and run it in place (Ctrl+Enter: no new cell below the last one)."""
        cell = self.notebook.locator(".jp-Notebook-cell").nth(index)
        prompt = cell.locator(".jp-InputArea-prompt")
        before = prompt.text_content()
        cell.locator(".jp-InputArea-prompt").click()  # select the cell, stay in command mode
        self.page.keyboard.press("Control+Enter")
        self.page.wait_for_function(
            "([p, before]) => /\\[\\d+\\]/.test(p.textContent) && p.textContent !== before",
            arg=[prompt.element_handle(), before], timeout=SLOW_MS)
        return cell.locator(".jp-OutputArea").text_content()

    def cell_output(self, index):
        return self.notebook.locator(".jp-Notebook-cell").nth(index).locator(".jp-OutputArea").text_content()

    def error_outputs(self):
        """(cell index, text) of every error shown under a cell."""
        found = []
        for i, cell in enumerate(self.notebook.locator(".jp-Notebook-cell").all()):
            for error in cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').all():
                found.append((i, error.text_content()))
        return found

    def validate(self):
        """Click Validate; returns (result class, dialog text) and closes the dialog."""
        self.notebook.locator(".validate-button").click()
        dialog = self.page.locator(".jp-Dialog", has_text="Validation Results")
        dialog.wait_for(timeout=SLOW_MS)
        body = dialog.locator(".jp-Dialog-body")
        # nbgrader marks the result on the body: validation-success, -failed, -changed, ...
        classes = body.evaluate("n => [n, ...n.querySelectorAll('*')].map(e => e.className).join(' ')")
        match = re.search(r"validation-[\w-]+", classes)
        return (match.group(0) if match else "no result"), body.inner_text()

    def close_dialog(self):
        self.page.locator(".jp-Dialog .jp-mod-accept").click()
        self.page.locator(".jp-Dialog").wait_for(state="detached")

    def assert_no_js_errors(self):
        assert not self.js_errors, f"{self.name}: JavaScript errors in JupyterLab:\n" + "\n".join(self.js_errors)
