"""The executor: nbgrader's Execute preprocessor, hardened for untrusted, broken notebooks.

On top of stock nbgrader (which already scores a cell by its execute reply, not by what it
displayed) it adds:

- a per-notebook time limit besides the per-cell one;
- a kernel that dies, or loops past its limit, costs only the cells it did not finish: the
  remaining cells get an error output naming the cause, and the notebook is still saved;
- hidden tests run as a second request after the visible part of their cell, outside the
  kernel's history (``store_history=False``, and a silent request then drops their source from
  ``linecache``), so no later cell finds them in ``In``, ``_ih``, ``_i*`` or the history manager;
  their outputs are marked, so that feedback can show the visible output and hide what the
  hidden part printed;
- outputs are capped as they arrive, not after the notebook: past a cell's or the notebook's cap
  they are counted and dropped (a note says how many), and past the flood limit the kernel is
  stopped, so one student's output cannot grow the grading worker's memory;
- how each notebook's run ended is written as data (``endings_directory``), for the caller;
- the kernel works in a scratch folder holding the assignment's helper files but not the
  notebook, whose file (hidden tests restored by nbgrader) would otherwise sit in its cwd.
"""
import copy
import json
import shutil
import tempfile
import time
from pathlib import Path

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from traitlets import Bool, Enum, Integer, Unicode

from nbgrader.preprocessors import Execute

from ..markers import HIDDEN_OUTPUT, KERNEL_DIED, NOT_RUN, TIMEOUT, error_output, split_hidden
from ..course import GradeOptions
from ..outcome import Ending

OUTPUT_FLOOD = "OutputLimitError"
FLOOD_MESSAGE = ("출력이 너무 많아 커널을 멈췄습니다 / the kernel was stopped: "
                 "the notebook's outputs passed the grader's limit")
ENDINGS = {None: Ending.COMPLETED, TIMEOUT: Ending.TIMED_OUT, KERNEL_DIED: Ending.KERNEL_DIED,
           OUTPUT_FLOOD: Ending.KERNEL_DIED}
# Run silently after a hidden part: drops the linecache entries IPython made for the cells
# numbered with the current execution count, which no stored cell has yet (the hidden part, this).
# ``CachingCompiler._filename_map`` is IPython's private record of those numbers (name -> number):
# tests/test_runtime.py checks it still is, so an IPython upgrade that changes it fails there.
FORGET_HIDDEN = ("[__import__('linecache').cache.pop(name, None) for name, number in "
                 "list(get_ipython().compile._filename_map.items()) "
                 "if number == get_ipython().execution_count]")


def _size(content):
    """Characters of the strings in a message's content (its size, without copying it); a loop,
    not a recursion, however deeply the student nested it."""
    size, stack = 0, [content]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, dict):
            size += 8 * len(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            size += 8 * len(value)
            stack.extend(value)
        else:
            size += 8
    return size


class GradingExecute(Execute):
    """Execute with a notebook time limit, kernel-death handling and split hidden tests."""

    notebook_timeout = Integer(
        GradeOptions.notebook_timeout, help="Seconds for the whole notebook; cells after the limit are not run."
    ).tag(config=True)

    max_cell_output = Integer(4 * 2**20, help="Characters of outputs kept per cell; later ones are "
                              "dropped as they arrive.").tag(config=True)
    max_notebook_output = Integer(16 * 2**20, help="Characters of outputs kept per notebook.").tag(config=True)
    max_output_flood = Integer(256 * 2**20, help="Characters of outputs a notebook may send in all; "
                               "past it the kernel is stopped.").tag(config=True)

    endings_directory = Unicode("", help="Folder where each notebook's Ending is written, as "
                                "<student>/<notebook>.json ('': nowhere).").tag(config=True)

    sandbox = Bool(True, help="Run the kernel in grader.sandbox (forked, confined).").tag(config=True)

    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate",
                           help="A grading kernel is used once: killed when the notebook is done, not "
                                "asked to shut down and waited for.").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        if self.sandbox:
            from ..sandbox.kernel import SandboxedKernelManager
            self.kernel_manager_class = SandboxedKernelManager
        self._deadline = time.monotonic() + self.notebook_timeout
        self._stopped = None
        self._received = self._kept = self._cell_kept = 0
        self._dropped = [0, 0]  # outputs, characters: of the cell running now
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
            self._write_ending(resources.get("nbgrader", {}))

    def _write_ending(self, info):
        if self.endings_directory and info.get("student") and info.get("notebook"):
            folder = Path(self.endings_directory, info["student"])
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{info['notebook']}.json").write_text(json.dumps(ENDINGS[self._stopped].value))

    @staticmethod
    def read_endings(folder):
        """The Endings written to ``folder`` (one student's), one per notebook run."""
        return [Ending(json.loads(p.read_text())) for p in sorted(Path(folder).glob("*.json"))]

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._stopped:
            cell.outputs = [error_output(NOT_RUN)]
            return cell, resources
        visible, hidden = split_hidden(cell.source)
        parts = [visible, hidden] if hidden else [cell.source]
        outputs = []
        self._cell_kept, self._dropped = 0, [0, 0]
        for number, source in enumerate(parts):
            part = copy.deepcopy(cell)
            part.source = source
            self.nb.cells[index] = part  # where nbclient applies display updates while it runs
            hidden = number == 1
            failed = self._run(part, resources, index, store_history=not hidden)
            if hidden and not self._stopped:
                self._forget_hidden()
            for output in part.outputs:
                if hidden:
                    output.setdefault("metadata", {})[HIDDEN_OUTPUT] = True
                outputs.append(output)
            cell.execution_count = part.get("execution_count")
            if failed:
                break
        if self._dropped[0]:  # said before the error that ended the cell, if any
            at = len(outputs) - (1 if outputs and outputs[-1].output_type == "error" else 0)
            outputs.insert(at, new_output("stream", name="stdout", text=(
                f"[출력 {self._dropped[0]}개 생략 / {self._dropped[0]} outputs ({self._dropped[1]:,} "
                "characters) not kept: past the grader's output limit]\n")))
        cell.outputs = outputs
        self.nb.cells[index] = cell  # nbclient put the last executed part there
        return cell, resources

    def _run(self, cell, resources, index, store_history=True):
        """Execute one cell; True if it ended in an error (and then maybe the kernel is gone)."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            self._stop(cell, TIMEOUT)
            return True
        self.timeout = max(1, int(min(self._cell_timeout, remaining)))
        try:
            self.execute_cell(cell, index, store_history=store_history)
        except DeadKernelError:
            self._stop(cell, OUTPUT_FLOOD if self._received > self.max_output_flood else KERNEL_DIED)
            return True
        except CellTimeoutError:
            self._stop(cell, TIMEOUT)
            return True
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if any(o.ename == TIMEOUT for o in errors):
            # An interrupt may not stop a loop that ignores SIGINT: give up on this kernel.
            self._stop(cell, TIMEOUT)
        return bool(errors)

    def _forget_hidden(self):
        """Drop the hidden part's source from the kernel's linecache (a silent request)."""
        try:
            self.wait_for_reply(self.kc.execute(FORGET_HIDDEN, silent=True, store_history=False))
        except (DeadKernelError, TimeoutError, RuntimeError):
            pass  # the next cell finds the kernel gone or busy, and says so

    def process_message(self, msg, cell, cell_index):
        """Count what every message of the cell brings; past the flood limit stop the kernel and
        read no more. A display update is kept within the caps as a new output is (``output``)."""
        self._size = _size(msg.get("content"))
        self._received += self._size
        if self._received > self.max_output_flood:
            self._kill_kernel()
            return None
        if msg.get("msg_type") == "update_display_data" and not self._keep():
            return None
        try:
            return super().process_message(msg, cell, cell_index)
        except IndexError:  # an update of an output kept elsewhere (the other part of a split cell)
            return None

    def output(self, outs, msg, display_id, cell_index):
        """Keep a new output only within the cell's and the notebook's caps."""
        if not self._keep():
            return None
        return super().output(outs, msg, display_id, cell_index)

    def _keep(self):
        """Whether the message being processed fits the caps (then it counts against them)."""
        if self._cell_kept + self._size > self.max_cell_output or self._kept + self._size > self.max_notebook_output:
            self._dropped[0] += 1
            self._dropped[1] += self._size
            return False
        self._cell_kept += self._size
        self._kept += self._size
        return True

    def _kill_kernel(self):
        """Kill the kernel now (its death ends the cell as a dead kernel does, within a second)."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is not None:
            process.kill()

    def _stop(self, cell, ename):
        self._stopped = ename
        cell.outputs = [o for o in cell.get("outputs", []) if o.output_type != "error"]
        cell.outputs.append(new_output("error", ename=ename, evalue=FLOOD_MESSAGE, traceback=[
            f"{ename}: {FLOOD_MESSAGE}"]) if ename == OUTPUT_FLOOD else error_output(ename))
        if ename in (KERNEL_DIED, OUTPUT_FLOOD):  # whether a dying kernel announced the cell's count first is a race
            cell.execution_count = None
        if self.km is not None:
            try:
                run_sync(self.km.shutdown_kernel)(now=True)
            except Exception:  # already dead; nothing else to clean up
                pass
