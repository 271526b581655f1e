"""The executor: nbgrader's Execute preprocessor, hardened for untrusted, broken notebooks.

On top of stock nbgrader (which already scores a cell by its execute reply, not by what it
displayed) it adds:

- a per-notebook time limit besides the per-cell one;
- a kernel that dies, or loops past its limit, costs only the cells it did not finish: the
  remaining cells get an error output naming the cause, and the notebook is still saved;
- hidden tests run as a second request after the visible part of their cell, and their outputs
  are marked, so that feedback can show the visible output and hide what the hidden part printed;
- the kernel works in a scratch folder holding the assignment's helper files but not the
  notebook, whose file (hidden tests restored by nbgrader) would otherwise sit in its cwd.
"""
import copy
import shutil
import tempfile
import time
from pathlib import Path

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from traitlets import Bool, Enum, Integer

from nbgrader.preprocessors import Execute

from ..markers import HIDDEN_OUTPUT, KERNEL_DIED, NOT_RUN, TIMEOUT, error_output, split_hidden
from ..outcome import Ending

ENDINGS = {None: Ending.COMPLETED, TIMEOUT: Ending.TIMED_OUT, KERNEL_DIED: Ending.KERNEL_DIED}


class GradingExecute(Execute):
    """Execute with a notebook time limit, kernel-death handling and split hidden tests."""

    notebook_timeout = Integer(
        300, help="Seconds for the whole notebook; cells after the limit are not run."
    ).tag(config=True)

    sandbox = Bool(True, help="Run the kernel in grader.sandbox (forked, confined).").tag(config=True)

    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate",
                           help="A grading kernel is used once: killed when the notebook is done, not "
                                "asked to shut down and waited for.").tag(config=True)

    endings = {}  # (student, notebook) -> Ending, for this process's caller to pick up

    def preprocess(self, nb, resources=None, km=None):
        if self.sandbox:
            from ..sandbox.kernel import SandboxedKernelManager
            self.kernel_manager_class = SandboxedKernelManager
        self._deadline = time.monotonic() + self.notebook_timeout
        self._stopped = None
        self._cell_timeout = self.timeout
        folder = Path(resources.get("metadata", {}).get("path") or ".")
        scratch = Path(tempfile.mkdtemp(prefix="grader-run-"))
        for helper in folder.iterdir():
            if helper.is_file() and helper.suffix != ".ipynb":
                shutil.copy(helper, scratch)
        resources.setdefault("metadata", {})["path"] = str(scratch)
        try:
            return super().preprocess(nb, resources, km)
        except DeadKernelError:  # the kernel died between cells, or while shutting down
            return nb, resources
        finally:
            resources["metadata"]["path"] = str(folder)
            shutil.rmtree(scratch, ignore_errors=True)
            info = resources.get("nbgrader", {})
            self.endings[(info.get("student"), info.get("notebook"))] = ENDINGS[self._stopped]

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._stopped:
            cell.outputs = [error_output(NOT_RUN)]
            return cell, resources
        visible, hidden = split_hidden(cell.source)
        parts = [visible, hidden] if hidden else [cell.source]
        outputs = []
        for number, source in enumerate(parts):
            part = copy.deepcopy(cell)
            part.source = source
            failed = self._run(part, resources, index)
            for output in part.outputs:
                if number == 1:
                    output.setdefault("metadata", {})[HIDDEN_OUTPUT] = True
                outputs.append(output)
            cell.execution_count = part.get("execution_count")
            if failed:
                break
        cell.outputs = outputs
        self.nb.cells[index] = cell  # nbclient put the last executed part there
        return cell, resources

    def _run(self, cell, resources, index):
        """Execute one cell; True if it ended in an error (and then maybe the kernel is gone)."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            self._stop(cell, TIMEOUT)
            return True
        self.timeout = max(1, int(min(self._cell_timeout, remaining)))
        try:
            super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stop(cell, KERNEL_DIED)
            return True
        except CellTimeoutError:
            self._stop(cell, TIMEOUT)
            return True
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if any(o.ename == TIMEOUT for o in errors):
            # An interrupt may not stop a loop that ignores SIGINT: give up on this kernel.
            self._stop(cell, TIMEOUT)
        return bool(errors)

    def _stop(self, cell, ename):
        self._stopped = ename
        cell.outputs = [o for o in cell.get("outputs", []) if o.output_type != "error"]
        cell.outputs.append(error_output(ename))
        if ename == KERNEL_DIED:  # whether a dying kernel announced the cell's count first is a race
            cell.execution_count = None
        if self.km is not None:
            try:
                run_sync(self.km.shutdown_kernel)(now=True)
            except Exception:  # already dead; nothing else to clean up
                pass
