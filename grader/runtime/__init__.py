"""Where grading runs: this machine's pool, a Dask cluster, or this process (tests).

- ``base``: the ``Runtime`` interface and ``Graded``, one student's result.
- ``worker``: one worker process's grading work (execute, verify, record), the same everywhere.
- ``pool``: this machine's worker processes; a worker that dies or stalls costs its task only.
- ``local``: ``LocalRuntime``, the pool with the run's warm sandbox.
- ``distributed``: ``DaskRuntime``, execute and verify on a cluster, record and feedback here.
- ``fake``: ``InProcessRuntime``, no sandbox and no processes, for unit tests.
"""


def runtime_for(course, options):
    """The runtime ``options`` ask for: a Dask cluster (``options.scheduler``) or this machine."""
    if options.scheduler:
        from .distributed import DaskRuntime
        return DaskRuntime(course, options)
    from .local import LocalRuntime
    return LocalRuntime(course, options)
