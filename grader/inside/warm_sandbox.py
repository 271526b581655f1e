"""Runs inside the sandbox: imports torch and ipykernel once, then forks a fresh process per job.

Started by ``grader.sandbox.warm.WarmSandbox`` inside bubblewrap (``python -I -c`` with this file's
source; nothing of the grader is importable there) as the sandbox's root, and never runs student
code itself. It listens on a Unix socket for the grading processes of one run (``serve``); each
request becomes one job with a clean slate (``start_job``): new PID, mount, IPC and network
namespaces, so the job sees and signals only its own processes, all of which die with it, and
an empty private /tmp (its home, IPython and matplotlib folders). The job then confines itself
(``confine``): the job's cgroups and rlimits, no inherited file descriptor but its own stdin and
stdout files, its own uid with no capabilities and no new privileges; only then does it become
what the request asks: an ipykernel on a connection file (history off), or a Python program (the
verifier's runner). The reply is the job's pid as the grader sees it.
Importing torch costs 2.5-3 s of CPU; starting a job costs tens of milliseconds.
"""
import ctypes
import json
import os
import resource
import select
import signal
import socket
import struct
import sys

LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 4, 24, 36, 38
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x8000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 0x1, 0x2, 0x4, 0x8, 0x20
MS_BIND, MS_REC, MS_PRIVATE, MNT_DETACH = 0x1000, 0x4000, 0x40000, 0x2
OUTER_TMP = "/.outer-tmp"  # the sandbox's /tmp, for a moment, while a job gets its own
WORK = "/tmp/work"  # where every job sees its own folder: one path, so outputs and tracebacks repeat


def libc(name, *args):
    """Call a libc function that returns 0 on success; raise OSError as ``os`` functions do."""
    if getattr(LIBC, name)(*args) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{name}{args}: {os.strerror(error)}")


KOREAN_FONTS = ("Noto Sans CJK KR", "NanumGothic")  # as the course's graph_drawer.py, best first
# What a kernel imports after it starts (its shell, debugger, tracebacks), each paid once here.
KERNEL_IMPORTS = ("ipykernel.ipkernel", "ipykernel.debugger", "IPython.core.debugger", "IPython.core.completerlib",
                  "IPython.extensions.storemagic", "stack_data", "pygments.formatters.terminal256", "tornado.queues")


def warm_up():
    """Import and run once what every notebook's first use would pay for, without starting threads.

    Every job inherits the result: torch's first backward and gradcheck (which import and set up
    lazily: about 0.3 s of a kernel's CPU), and matplotlib's font list and the fonts a figure
    renders with (the Korean one is a large file).
    """
    import importlib
    import io
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # debugpy's note on frozen modules, once per server
    for name in KERNEL_IMPORTS:
        importlib.import_module(name)
    import IPython  # noqa: F401
    import ipykernel.kernelapp  # noqa: F401
    import matplotlib
    matplotlib.use("module://matplotlib_inline.backend_inline")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager
    import numpy  # noqa: F401
    import torch
    import torch.nn.functional  # noqa: F401

    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            ctx.save_for_backward(t)
            return t * t

        @staticmethod
        def backward(ctx, grad_output):
            t, = ctx.saved_tensors
            return 2 * t * grad_output

    torch.autograd.gradcheck(Square.apply, (torch.rand(3, dtype=torch.float64, requires_grad=True),))
    Square.apply(torch.ones(2, requires_grad=True)).sum().backward()
    installed = {font.name for font in font_manager.fontManager.ttflist}
    korean = [name for name in KOREAN_FONTS if name in installed][:1]
    for family, title in ((["sans-serif"], "gradient"), (["sans-serif", *korean], "기울기" if korean else "")):
        with plt.rc_context({"font.family": family}):
            figure, axes = plt.subplots()
            axes.plot([0, 1])
            axes.set_title(title)
            figure.savefig(io.BytesIO(), format="png")
            plt.close(figure)


def enter_namespaces(request):
    """In the first child: namespaces for the job's children, its own empty /tmp, its folder at WORK.

    ``unshare(CLONE_NEWPID)`` moves only the caller's children into the new PID namespace, so
    the job is the next fork. The /tmp tmpfs belongs to the job's uid and goes when it ends.
    """
    libc("unshare", CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET)
    libc("mount", None, b"/", None, MS_REC | MS_PRIVATE, None)
    uid = request["uid"]
    kept = python_under_tmp()
    if kept:
        os.makedirs(OUTER_TMP, exist_ok=True)
        libc("mount", b"/tmp", OUTER_TMP.encode(), None, MS_BIND | MS_REC, None)
    options = f"size={request['tmp_mb']}m,nr_inodes=65536,mode=0700,uid={uid},gid={uid}"
    libc("mount", b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, options.encode())
    for path in kept:  # a venv under /tmp (a clone there) stays, read-only, in the job's own /tmp
        os.makedirs(path)
        libc("mount", (OUTER_TMP + path[len("/tmp"):]).encode(), path.encode(), None, MS_BIND | MS_REC, None)
        libc("mount", None, path.encode(), None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)
    if kept:
        libc("umount2", OUTER_TMP.encode(), MNT_DETACH)
    os.mkdir(WORK, 0o700)
    os.chown(WORK, uid, uid)
    libc("mount", request["cwd"].encode(), WORK.encode(), None, MS_BIND | MS_REC, None)


def python_under_tmp():
    """The folders of this Python (venv, base interpreter) that lie under /tmp, outermost first."""
    roots = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    under = sorted(r for r in roots if r.startswith("/tmp/"))
    return [r for r in under if not any(r != o and r.startswith(o + "/") for o in under)]


def become_pid_one():
    """In the job, pid 1 of its namespace: a /proc that lists only the job's own processes.

    A pid 1 ignores the signals it has no handler for: SIGTERM keeps its usual meaning.
    """
    libc("mount", b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(128 + signum))


def confine(request):
    """In the job, before anything of it runs: cgroups, limits, priority, files, user, capabilities."""
    os.setsid()
    for procs in request["cgroups"]:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    for name, value in request["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    os.nice(int(request.get("nice", 0)))
    os.chdir(WORK)
    for server_socket in [*LISTENER, *CLIENTS]:  # the job's copies: closed below, detached first
        server_socket.detach()
    for fd, path, mode in ((0, request.get("stdin"), os.O_RDONLY), (1, request.get("stdout"), os.O_WRONLY),
                           (2, None, os.O_WRONLY)):
        os.dup2(os.open(path or os.devnull, mode), fd)
    os.closerange(3, 65536)
    sys.path.insert(0, "")  # as `python -m ipykernel_launcher` would: the job's folder
    with open("/proc/sys/kernel/cap_last_cap") as f:
        for capability in range(int(f.read()) + 1):
            libc("prctl", PR_CAPBSET_DROP, capability, 0, 0, 0)
    uid = request["uid"]
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    libc("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    os.environ.update(request["env"])
    os.environ.pop("JPY_PARENT_PID", None)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def run_job(request):
    """In the job: confine it, then run the kernel or the program (never returns)."""
    try:
        become_pid_one()
        confine(request)
        if "connection_file" in request:
            from ipykernel.kernelapp import IPKernelApp
            app = IPKernelApp.instance()
            # --matplotlib=inline: pyplot was imported before the kernel's shell existed (warm_up),
            # so the inline backend's figure formatter and hooks are set up here, as %matplotlib does.
            app.initialize(["-f", request["connection_file"], "--HistoryManager.enabled=False",
                            "--matplotlib=inline"])
            app.start()
        else:
            sys.stdin, sys.stdout = open(0, closefd=False), open(1, "w", closefd=False)
            exec(compile(request["program"], "<program>", "exec"), {"__name__": "__main__"})
            sys.stdout.flush()
            os._exit(0)
    finally:
        os._exit(1)


def start_job(request):
    """Fork the job into namespaces of its own; {"pid": its pid outside} or {"error": why}.

    A first child enters the namespaces, forks the job, reports the job's pid over a pipe and
    exits; this server, a child subreaper, inherits the job and reaps it when it ends.
    """
    read_end, write_end = os.pipe()
    first = os.fork()
    if first == 0:
        os.close(read_end)
        try:
            enter_namespaces(request)
            job = os.fork()
            if job == 0:
                os.close(write_end)
                run_job(request)
            reply = {"pid": job}
        except Exception as error:  # reported to the grader, which refuses the job
            reply = {"error": repr(error)}
        os.write(write_end, json.dumps(reply).encode())
        os._exit(0)
    os.close(write_end)
    try:
        reply = os.read(read_end, 4096)
    finally:
        os.close(read_end)
        os.waitpid(first, 0)
    return json.loads(reply) if reply else {"error": "the job's first child died"}


def reap():
    """Collect every job that has ended, so that its pid disappears."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        JOBS.discard(pid)


MAX_REQUEST = 1 << 20  # bytes a client may send before its line ends
LISTENER = []  # the server's listening socket, once it listens
CLIENTS = {}   # each connection of a grading process -> what it sent past its last full line
JOBS = set()   # the pids of the jobs still running, ended with the server


def peer_uid(connection):
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    pid, uid, gid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i")))
    return uid


def answer(connection, buffer):
    """Serve the complete request lines in ``buffer``; returns what is left of it."""
    while b"\n" in buffer:
        line, buffer = buffer.split(b"\n", 1)
        request = json.loads(line)
        reply = start_job(request)
        if "pid" in reply:
            JOBS.add(reply["pid"])
        connection.sendall((json.dumps({"id": request["id"], **reply}) + "\n").encode())
    return buffer


def serve(address):
    """Listen on the Unix socket ``address`` (0600, in a root-only folder) for the grader's
    processes; end when stdin closes (the process that started this server is done).

    Every grading process of a run connects here: one warm server per run, not per worker.
    A connection from any uid but this server's own is closed unheard (jobs have uids of their
    own and could not reach the folder anyway). Ending, it kills the jobs still running.
    """
    libc("prctl", PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    libc("prctl", PR_SET_DUMPABLE, 0, 0, 0, 0)  # ptrace then needs CAP_SYS_PTRACE, which no job has
    warm_up()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)
    listener.bind(address)
    os.umask(previous)
    listener.listen(64)
    LISTENER.append(listener)
    sys.stdout.write(json.dumps({"ready": os.getpid()}) + "\n")
    sys.stdout.flush()
    stdin = sys.stdin.buffer
    while True:
        readable, _, _ = select.select([stdin, listener, *CLIENTS], [], [], 0.5)
        reap()
        for ready in readable:
            if ready is stdin:
                if not stdin.readline():
                    for pid in JOBS:  # a job its grader left running (a worker stopped mid-run)
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    os._exit(0)  # no interpreter shutdown: torch's teardown alone takes half a second
            elif ready is listener:
                connection, _ = listener.accept()
                if peer_uid(connection) == os.geteuid():
                    CLIENTS[connection] = b""
                else:
                    connection.close()
            else:
                data = ready.recv(65536)
                try:
                    if not data:
                        raise ConnectionError("closed")
                    CLIENTS[ready] = answer(ready, CLIENTS[ready] + data)
                    if len(CLIENTS[ready]) > MAX_REQUEST:
                        raise ConnectionError("request too long")
                except (OSError, ValueError, KeyError):
                    ready.close()
                    del CLIENTS[ready]


if __name__ == "__main__":
    serve(sys.argv[1])
