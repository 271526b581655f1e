"""A clean slate per job: nothing one student's kernel leaves behind reaches the next one.

A planter kernel writes into every folder it can write to (its cwd, /tmp, $HOME, IPython's
startup files and config, matplotlibrc, user site-packages, .pth files, any other writable
folder it finds by walking the file system), types a secret into IPython's history, and leaves a
process running in a session of its own. Controls: a fresh IPython started in the planter's own
job runs the planted startup files and config, and no folder a fresh Python reads at start-up
(site-packages, .pth files) was writable. Then the next kernel from the same warm sandbox must
see none of it, and jobs alive side by side must neither see nor signal each other. Uids are
never reused at --jobs 32, and an attacker graded before an honest student by the same worker
leaves the honest student's grade exactly as when graded alone.
"""
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
from jupyter_core.utils import run_sync

from grader import batch
from grader.course import Course, GradeOptions
from grader.demo import simulate
from grader.sandbox import launcher
from grader.sandbox.cgroups import Cgroups
from grader.sandbox import warm
from grader.sandbox.warm import JOB_ENV, ForkClient, ForkedProcess, WarmSandbox
from grader.sandbox.kernel import SandboxedKernelManager
from grader.sandbox.launcher import Limits, UidAllocator

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

A, NB = "a1_backprop", "backprop"
TOKEN = "planted7f3c"
SHADOWS = ("backprop_checks.py", "torch.py", "sitecustomize.py", "usercustomize.py")

# What a planted file runs if anything ever loads it: a flag, and sabotage of the checks.
PAYLOAD = (f"import builtins, sys, types, torch; builtins.{TOKEN} = True; "
           "torch.allclose = lambda *a, **k: False; "
           "fake = types.ModuleType('backprop_checks'); "
           "fake.__getattr__ = lambda name: (lambda *a, **k: 1 / 0); "
           "sys.modules['backprop_checks'] = fake")

WALK = r'''
import os
def walk():
    """(every folder this process can list, every folder it can write to), outside /proc."""
    listed, writable = [], []
    for top in sorted(set(os.listdir("/")) - {"proc"}):
        for root, dirs, files in os.walk("/" + top):
            listed.append((root, files))
            if os.access(root, os.W_OK | os.X_OK):
                writable.append(root)
    return listed, writable
'''

PLANT = WALK + f'''
import json, subprocess, sys
TOKEN, PAYLOAD, SHADOWS = {TOKEN!r}, {PAYLOAD!r}, {SHADOWS!r}
secret = "the answer of the planter " + TOKEN  # now in IPython's history, were it on
os.umask(0)  # everything it makes is open to every uid
ipython = os.environ["IPYTHONDIR"] + "/profile_default"
startup = os.path.join(ipython, "startup")
os.makedirs(startup, exist_ok=True)
os.makedirs(os.path.expanduser("~/.local/lib/python%d.%d/site-packages" % sys.version_info[:2]),
            exist_ok=True)
os.makedirs(os.environ["MPLCONFIGDIR"], exist_ok=True)
os.makedirs(os.path.expanduser("~/.config/matplotlib"), exist_ok=True)
open(os.path.join(startup, "00-" + TOKEN + ".py"), "w").write(PAYLOAD)
for name in ("ipython_config.py", "ipython_kernel_config.py"):
    open(os.path.join(ipython, name), "w").write(f"c.InteractiveShellApp.exec_lines = [{{PAYLOAD!r}}]")
for folder in (os.environ["MPLCONFIGDIR"], os.path.expanduser("~/.config/matplotlib")):
    open(os.path.join(folder, "matplotlibrc"), "w").write("lines.linewidth: 7.25\\n")
planted = []
for folder in sorted(set(walk()[1]) | {{os.getcwd()}}):  # its cwd sits in a folder it cannot list
    try:
        for name in SHADOWS:
            open(os.path.join(folder, name), "w").write(PAYLOAD)
        open(os.path.join(folder, TOKEN + ".pth"), "w").write(PAYLOAD + "\\n")
        open(os.path.join(folder, TOKEN + ".txt"), "w").write(TOKEN)
        planted.append(folder)
    except OSError:
        pass
for root, dirs, files in os.walk("/tmp"):
    for name in dirs + files:
        try:
            os.chmod(os.path.join(root, name), 0o777)
        except OSError:
            pass
lurker = ("import os, time\\n"
          "while True:\\n"
          "    open(os.path.join({{!r}}, {{!r}} + '-lurker-' + str(time.time())), 'w').close()\\n"
          "    time.sleep(0.1)").format(os.getcwd(), TOKEN)
background = subprocess.Popen([sys.executable, "-I", "-c", lurker], start_new_session=True,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
probe = "import builtins; print(hasattr(builtins, %r))" % TOKEN
fresh_ipython = subprocess.run([sys.executable, "-c", "import sys; from IPython import start_ipython; "
                                "start_ipython(argv=['--no-banner', '-c', sys.argv[1]])", probe],
                               capture_output=True, text=True, timeout=120)
fresh_path = subprocess.run([sys.executable, "-c", "import json, sys; print(json.dumps(sys.path))"],
                            capture_output=True, text=True, timeout=60)
print(json.dumps({{"planted": planted, "uid": os.getuid(), "lurker_alive": background.poll() is None,
                  "fresh_ipython": fresh_ipython.stdout.strip().splitlines()[-1:],
                  "fresh_path": json.loads(fresh_path.stdout),
                  "history": get_ipython().history_manager.enabled}}))
'''

INSPECT = WALK + f'''
import builtins, json, subprocess, sys
import matplotlib, torch
import backprop_checks
TOKEN, SHADOWS = {TOKEN!r}, {SHADOWS!r}
listed, writable = walk()
leftovers = []
for root, files in listed:
    for name in files:
        path = os.path.join(root, name)
        if TOKEN in name or "history.sqlite" in name:
            leftovers.append(path)
        elif name in SHADOWS:
            try:
                if TOKEN in open(path, errors="replace").read():
                    leftovers.append(path)
            except OSError:
                pass
procs = {{}}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        procs[pid] = [line.split()[1] for line in open(f"/proc/{{pid}}/status") if line.startswith("Uid:")][0]
    except (OSError, IndexError):
        pass
probe = "import builtins; print(hasattr(builtins, %r))" % TOKEN
fresh_python = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
print(json.dumps({{"leftovers": leftovers, "writable": writable, "uid": os.getuid(), "pid": os.getpid(),
                  "procs": procs, "flag": hasattr(builtins, TOKEN) or TOKEN in get_ipython().user_ns,
                  "allclose": torch.allclose(torch.ones(1), torch.ones(1)),
                  "checks": backprop_checks.__file__, "torch": torch.__file__,
                  "linewidth": matplotlib.rcParams["lines.linewidth"],
                  "history": get_ipython().history_manager.enabled,
                  "fresh_python": fresh_python.stdout.strip()}}))
'''


class Kernel:
    """A kernel forked by this process's fork server, driven one cell at a time."""

    def __init__(self, cwd):
        self.manager = SandboxedKernelManager()
        run_sync(self.manager.start_kernel)(cwd=str(cwd))
        self.client = self.manager.client()
        self.client.start_channels()
        run_sync(self.client.wait_for_ready)(timeout=120)

    @property
    def pid(self):
        """The kernel's pid as the grader sees it (pid 1 of the kernel's own namespace)."""
        return self.manager.provisioner.pid

    def run(self, code):
        """What the cell printed; the test fails if the cell raised."""
        printed = []

        def keep(message):
            content = message["content"]
            printed.append(content.get("text", "") + "\n".join(content.get("traceback", [])))
        reply = run_sync(self.client.execute_interactive)(code, output_hook=keep, timeout=180)
        assert reply["content"]["status"] == "ok", "".join(printed)
        return "".join(printed)

    def json(self, code):
        return json.loads(self.run(code).strip().splitlines()[-1])

    def shutdown(self):
        self.client.stop_channels()
        run_sync(self.manager.shutdown_kernel)()


def gone(uid, within=5):
    """True once no process on this machine runs as ``uid`` (the warm sandbox reaps every 0.5 s)."""
    deadline = time.monotonic() + within
    while True:
        running = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/status") as f:
                    running += [pid for line in f if line.startswith("Uid:") and line.split()[1] == str(uid)]
            except OSError:
                pass
        if not running or time.monotonic() > deadline:
            return not running
        time.sleep(0.1)


@pytest.fixture
def helpers(tmp_path):
    """A kernel's starting folder: the assignment's helper files."""
    for helper in (Course().release / A).glob("*.py"):
        shutil.copy(helper, tmp_path)
    return tmp_path


def test_the_next_kernel_sees_nothing_the_previous_one_planted(helpers):
    planter = Kernel(helpers)
    planted = planter.json(PLANT)
    # the controls: the plants are live where they landed
    assert planted["fresh_ipython"] == ["True"]
    assert not set(planted["fresh_path"]) & set(planted["planted"]), planted["fresh_path"]
    assert planted["lurker_alive"] and planted["history"] is False
    assert {"/tmp", "/tmp/.ipython/profile_default/startup", "/tmp/.matplotlib"} <= set(planted["planted"])
    assert any(folder.endswith("/work") for folder in planted["planted"]), planted["planted"]
    planter.shutdown()
    assert gone(planted["uid"])  # its lurker died with it

    victim = Kernel(helpers)
    seen = victim.json(INSPECT)
    victim.shutdown()
    assert seen["uid"] != planted["uid"]
    assert seen["leftovers"] == []
    assert all(folder == "/tmp" or folder.startswith("/tmp/") for folder in seen["writable"])
    assert not seen["flag"] and seen["allclose"] and seen["fresh_python"] == "False"
    assert seen["checks"].endswith("/work/backprop_checks.py")
    assert "site-packages/torch/" in seen["torch"]
    assert seen["linewidth"] != 7.25 and seen["history"] is False
    assert seen["pid"] == 1 and set(seen["procs"].values()) == {str(seen["uid"])}


def test_jobs_side_by_side_neither_see_nor_signal_each_other(helpers):
    first, second = Kernel(helpers), Kernel(helpers)
    try:
        first.run("import subprocess, sys\n"
                  "lurker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])")
        # from inside the first kernel, kill everything it may: only its own namespace is hit
        first.run("import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass")
        seen = second.json(INSPECT)
        assert seen["pid"] == 1 and set(seen["procs"].values()) == {str(seen["uid"])}
        bwrap = warm.client().sandbox.process.pid
        with open(f"/proc/{bwrap}/task/{bwrap}/children") as f:
            server = [int(pid) for pid in f.read().split()]  # the warm sandbox inside bubblewrap
        assert server
        for pid in (first.pid, os.getpid(), bwrap, *server):
            probe = second.run(f"import os\ntry:\n    os.kill({pid}, 0)\n    print('reached')\n"
                               f"except OSError as error:\n    print(type(error).__name__)\n"
                               f"print(os.path.exists('/proc/{pid}/status'))")
            assert probe.split() == ["ProcessLookupError", "False"], (pid, probe)
        assert second.run("print(2 * 21)").strip() == "42"
        assert first.run("print(lurker.poll())").strip() == "-9"  # the first's kill(-1) hit its own
    finally:
        first.shutdown()
        second.shutdown()


def test_a_kernel_as_pid_one_is_still_interrupted_and_terminated(helpers):
    kernel = Kernel(helpers)
    try:
        # as nbclient sends a graded cell: an error does not abort the requests queued behind it
        request = kernel.client.execute("while True:\n    pass", stop_on_error=False)
        time.sleep(1)
        run_sync(kernel.manager.interrupt_kernel)()
        reply = run_sync(kernel.client.get_shell_msg)(timeout=30)
        assert reply["parent_header"]["msg_id"] == request
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert kernel.run("print(6 * 7)").strip() == "42"
        os.kill(kernel.pid, signal.SIGTERM)
        assert ForkedProcess(kernel.pid).wait(10) is not None
    finally:
        kernel.shutdown()


FORK_AS_ROOT = r"""
import json, socket, sys
connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
connection.connect(sys.argv[1])
request = {"id": 0, "cwd": "/", "uid": 0, "rlimits": {}, "tmp_mb": 16, "cgroups": [], "env": {},
           "program": "import os; os.system('id > /tmp/owned')"}
try:
    connection.sendall(json.dumps(request).encode() + b"\n")
    connection.settimeout(10)
    print(repr(connection.recv(4096)) if connection.recv(1, socket.MSG_PEEK) else "hung up")
except (BrokenPipeError, ConnectionResetError):
    print("hung up")
"""


def test_the_shared_warm_server_forks_only_for_the_grader(tmp_path):
    """The run's one warm server listens where only root can reach (a 0700 folder, a 0600
    socket); a process of another uid that is handed the socket anyway is hung up on unheard."""
    server = WarmSandbox().wait_ready()
    try:
        assert stat.S_IMODE(server.socket.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(server.socket.stat().st_mode) == 0o600
        assert ForkClient(server.socket).fork(*_job_args(ForkClient(server.socket)), program="pass") > 0
        server.socket.parent.chmod(0o711)  # as if both file permissions failed
        server.socket.chmod(0o666)
        uid = UidAllocator().next()
        result = subprocess.run([sys.executable, "-I", "-c", FORK_AS_ROOT, str(server.socket)],
                                capture_output=True, text=True, timeout=60,
                                preexec_fn=lambda: (os.setgid(uid), os.setuid(uid)))
        assert result.stdout.strip() == "hung up", (result.stdout, result.stderr)
    finally:
        server.close()


def test_jobs_left_running_end_with_the_warm_server():
    """A job its grader never stopped (a worker killed mid-run) is killed when the run's server closes."""
    server = WarmSandbox().wait_ready()
    try:
        client = ForkClient(server.socket)
        folder, uid, limits, cgroups, env = _job_args(client)
        client.fork(folder, uid, limits, cgroups, env, program="while True:\n    pass")
        deadline = time.monotonic() + 10
        while gone(uid, within=0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not gone(uid, within=0), "the looping job did not start"
    finally:
        server.close()
    try:
        assert gone(uid, within=10), "a job outlived the run's warm server"
    finally:
        cgroups.remove()


REACH_THE_SERVER = """
import json, socket
from pathlib import Path
from ipykernel.connect import get_connection_file
runs = Path(get_connection_file()).parent.parent  # the job's folder lies in the run's folder
tries = {}
for name, attempt in (("list", lambda: list(runs.iterdir())),
                      ("connect", lambda: socket.socket(socket.AF_UNIX).connect(str(runs / "control" / "fork.sock")))):
    try:
        attempt()
        tries[name] = "reached"
    except OSError as error:
        tries[name] = type(error).__name__
print(json.dumps(tries))
"""


def test_a_kernel_cannot_reach_the_warm_server(helpers):
    """A student who derives the run's folder from the kernel's connection file, to ask the
    server for a job as root, can neither list that folder nor reach the server's socket."""
    kernel = Kernel(helpers)
    try:
        assert kernel.json(REACH_THE_SERVER) == {"list": "PermissionError", "connect": "PermissionError"}
    finally:
        kernel.shutdown()


def _job_args(client):
    uid, folder = client.new_job()
    return folder, uid, Limits(), Cgroups(folder.name, Limits()), JOB_ENV


def test_the_grader_says_once_when_cgroups_are_unavailable(monkeypatch, caplog):
    monkeypatch.setattr(Cgroups, "supported", classmethod(lambda cls: False))
    with caplog.at_level(logging.WARNING, logger="grader"):
        launcher.check()
    assert len([r for r in caplog.records if "cgroups v1" in r.getMessage()]) == 1


def test_uids_are_never_reused_at_32_jobs(tmp_path):
    server = warm.client()
    with ThreadPoolExecutor(32) as pool:
        jobs = list(pool.map(lambda _: server.new_job(), range(128)))
    assert len({uid for uid, _ in jobs}) == len({folder for _, folder in jobs}) == 128

    state = tmp_path / "next-uid"  # one sequence, drawn from by 4 processes and 4 threads at once
    draw = ("from grader.sandbox.launcher import UidAllocator\n"
            f"print(*[UidAllocator({str(state)!r}).next() for _ in range(64)])")
    processes = [subprocess.Popen([sys.executable, "-c", draw], stdout=subprocess.PIPE, text=True,
                                  cwd=Course().root) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        uids = [uid for got in pool.map(lambda _: [UidAllocator(state).next() for _ in range(64)], range(4))
                for uid in got]
    uids += [int(uid) for process in processes for uid in process.communicate(timeout=120)[0].split()]
    assert len(uids) == len(set(uids)) == 512

    def run_one(job):
        uid, folder = job
        out = folder / "out"
        out.touch()
        os.chown(out, uid, uid)
        cgroups = Cgroups(folder.name, Limits())
        try:
            pid = server.fork(folder, uid, Limits(), cgroups, JOB_ENV, stdout=str(out),
                              program="import os, time\nprint(os.getuid(), os.getpid())\ntime.sleep(1)")
            assert ForkedProcess(pid).wait(60) is not None
            return uid, out.read_text().split()
        finally:
            cgroups.remove()
    with ThreadPoolExecutor(32) as pool:
        ran = list(pool.map(run_one, jobs[:32]))
    assert all(seen == [str(uid), "1"] for uid, seen in ran), ran


def _grade(course, students):
    """Grade ``students`` ({name: Mul answer}) with one worker, in name order; rows by student."""
    answers = simulate.solution_answers(course.solutions / A / f"{NB}.ipynb")
    for student, mul in students.items():
        folder = course.submitted / student / A
        folder.mkdir(parents=True)
        nb = simulate.build_submission(course.release / A / f"{NB}.ipynb", dict(answers, mul=mul))
        nbformat.write(nb, folder / f"{NB}.ipynb")
    result = batch.grade(course, A, GradeOptions(jobs=1, cell_timeout=60, notebook_timeout=300,
                                                 verify_timeout=60))
    return {row["student"]: {k: v for k, v in row.items() if k != "notes"} for row in result.rows}


def test_an_attacker_graded_first_leaves_the_honest_grade_unchanged(tmp_path, a1_generated):
    correct = simulate.solution_answers(Course().solutions / A / f"{NB}.ipynb")["mul"]
    alone = _grade(a1_generated(tmp_path / "alone"), {"b_honest": correct})
    after = _grade(a1_generated(tmp_path / "after"), {"a_attacker": correct + "\n" + PLANT, "b_honest": correct})
    assert alone["b_honest"]["total"] == 12 and not alone["b_honest"]["flags"]
    assert after["b_honest"] == alone["b_honest"]
