"""Runs inside the sandbox: imports torch and ipykernel once, then forks a fresh process per job.

Started by ``grader.sandbox.forkserver`` inside bubblewrap (``python -I -c`` with this file's
source; nothing of the grader is importable there) as the sandbox's root, and never runs student code itself. For each
request on stdin it forks; the child joins the job's cgroups, sets its rlimits, drops to the
job's own uid with no capabilities and no new privileges, keeps no inherited file descriptor but
the job's own stdin and stdout files, and only then becomes what the request asks: an ipykernel
on a connection file, or a Python program (the verifier's runner). The reply on stdout is the
child's pid. Importing torch costs 2.5-3 s of CPU; a fork costs milliseconds.
"""
import ctypes
import json
import os
import resource
import select
import signal
import sys

PR_SET_NO_NEW_PRIVS = 38


def warm_up():
    """Import what every notebook imports, without running anything that starts threads."""
    import IPython  # noqa: F401
    import ipykernel.kernelapp  # noqa: F401
    import matplotlib
    matplotlib.use("module://matplotlib_inline.backend_inline")
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    import torch  # noqa: F401
    import torch.nn.functional  # noqa: F401


def confine(request):
    """In the forked child, before anything of the job runs: cgroups, limits, files, user."""
    os.setsid()
    for procs in request["cgroups"]:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    for name, value in request["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    os.chdir(request["cwd"])
    for fd, path, mode in ((0, request.get("stdin"), os.O_RDONLY), (1, request.get("stdout"), os.O_WRONLY),
                           (2, None, os.O_WRONLY)):
        os.dup2(os.open(path or os.devnull, mode), fd)
    os.closerange(3, 65536)
    sys.path.insert(0, "")  # as `python -m ipykernel_launcher` would: the job's folder
    uid = request["uid"]
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    os.environ.update(request["env"])
    os.environ.pop("JPY_PARENT_PID", None)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def run_job(request):
    """In the forked child: confine it, then run the kernel or the program (never returns)."""
    try:
        confine(request)
        if "connection_file" in request:
            from ipykernel.kernelapp import IPKernelApp
            app = IPKernelApp.instance()
            app.initialize(["-f", request["connection_file"]])
            app.start()
        else:
            sys.stdin, sys.stdout = open(0, closefd=False), open(1, "w", closefd=False)
            exec(compile(request["program"], "<program>", "exec"), {"__name__": "__main__"})
            sys.stdout.flush()
            os._exit(0)
    finally:
        os._exit(1)


def serve():
    warm_up()
    sys.stdout.write(json.dumps({"ready": os.getpid()}) + "\n")
    sys.stdout.flush()
    stdin = sys.stdin.buffer
    while True:
        readable, _, _ = select.select([stdin], [], [], 0.5)
        while True:  # reap finished kernels so their pids disappear
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if not readable:
            continue
        line = stdin.readline()
        if not line:
            return
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run_job(request)
        sys.stdout.write(json.dumps({"id": request["id"], "pid": pid}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
