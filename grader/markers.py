"""What the grader marks in notebooks, and how it finds the hidden tests: one definition for every step.

- The hidden region of a test cell is nbgrader's: from the line holding ``BEGIN HIDDEN TESTS``
  to the line holding ``END HIDDEN TESTS`` (to the end of the cell when END is missing).
- Outputs the hidden part printed carry ``HIDDEN_OUTPUT`` in their metadata (execute marks them,
  feedback drops them).
- A cell the executor could not finish gets an error output naming why (``TIMEOUT``,
  ``KERNEL_DIED``, ``NOT_RUN``; ``NOT_EXECUTED`` when the grader could not run the notebook at
  all): that is what the student sees; the grader's own record of how
  execution ended travels as data (``grader.outcome.Ending``), never re-read from notebooks.
"""
from nbformat.v4 import new_output

HIDDEN_BEGIN = "BEGIN HIDDEN TESTS"
HIDDEN_END = "END HIDDEN TESTS"
HIDDEN_OUTPUT = "grader_hidden_test"

TIMEOUT = "CellTimeoutError"
KERNEL_DIED = "DeadKernelError"
NOT_RUN = "NotRunError"
NOT_EXECUTED = "NotExecutedError"

MESSAGES = {
    TIMEOUT: "시간 제한을 넘었습니다 / the cell ran past its time limit",
    KERNEL_DIED: "커널이 죽었습니다 (os._exit, segfault, 메모리 초과?) / "
                 "the kernel died (os._exit, a segfault, out of memory?)",
    NOT_RUN: "앞의 셀에서 커널이 멈춰 실행하지 못했습니다 / "
             "not run: the kernel stopped in an earlier cell",
    NOT_EXECUTED: "채점기가 이 노트북을 실행하지 못했습니다 / the grader could not run this notebook",
}


def split_hidden(source):
    """(visible part, hidden part) of a test cell's source; hidden is '' when there is none.

    The hidden part is the BEGIN..END region, markers included; the visible part is every
    other line, in order.
    """
    visible, hidden, inside = [], [], False
    for line in source.split("\n"):
        if HIDDEN_BEGIN in line:
            inside = True
        (hidden if inside else visible).append(line)
        if HIDDEN_END in line:
            inside = False
    return "\n".join(visible), "\n".join(hidden)


def error_output(ename):
    """The error output that tells the student why a cell has no result."""
    return new_output("error", ename=ename, evalue=MESSAGES[ename],
                      traceback=[f"{ename}: {MESSAGES[ename]}"])
