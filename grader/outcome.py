"""One record per student: what each step of grading found, as data.

Each step fills its own field of a ``StudentOutcome``; the report and the feedback only format
it. Flags are derived here, in one place, from those fields.

A disagreement between the notebook's tests and the grader's own check is usually an ordinary
bug the stricter check caught (a broadcast shape, a float32 buffer): it is ``verification_differs``.
Only with evidence of what the code does (a scan finding, or a capability the verification runner
saw used) does it become ``possible_tampering``. Notes are bounded: a few items of each kind,
each cut to ``MAX_NOTE_CHARS``.
"""
from dataclasses import dataclass, field
from enum import Enum

MAX_NOTE_ITEMS = 3    # of each kind (problems, disagreements, findings ...) per student
MAX_NOTE_CHARS = 200  # per item


class Ending(str, Enum):
    """How running a student's notebook ended."""
    COMPLETED = "completed"
    TIMED_OUT = "timed_out"
    KERNEL_DIED = "kernel_died"


@dataclass(frozen=True)
class Verdict:
    """The grader's own check of one grade cell, on fresh inputs outside the notebook."""
    passed: bool
    reason: str = ""
    mistake: str = ""  # the catalogue's name for a wrong answer (grader.steps.mistakes), else ''
    evidence: tuple = ()  # capabilities the verifier saw the student's code use (aten::…, autograd_reentered)


@dataclass(frozen=True)
class Disagreement:
    """A grade cell where the notebook's tests and the grader's own check differ."""
    grade_id: str
    notebook_points: float
    verified_points: float
    reason: str = ""

    @property
    def notebook_passed_verification_failed(self):
        return self.notebook_points > self.verified_points

    def describe(self):
        how = ("passed in the notebook, failed verification" if self.notebook_passed_verification_failed
               else "failed in the notebook, passed verification")
        return (f"{self.grade_id}: {how} (notebook {self.notebook_points:g}, verified "
                f"{self.verified_points:g})" + (f": {self.reason}" if self.reason else ""))


@dataclass
class StudentOutcome:
    """Everything grading found for one student's submission of one assignment."""
    student: str
    repairs: list = field(default_factory=list)        # what repair changed (text for people)
    problems: list = field(default_factory=list)       # why a person must look (manual review)
    ending: Ending | None = None                       # None: not executed
    verdicts: dict = field(default_factory=dict)       # grade id -> Verdict
    disagreements: list = field(default_factory=list)  # [Disagreement]
    findings: list = field(default_factory=list)       # [grader.steps.scan.Finding]
    graded_by_hand: list = field(default_factory=list)  # grade ids whose score a person set (score.py)

    @property
    def capability_hits(self):
        """What the verification runner saw the student's code do that an honest solution never
        does (torch's derivatives, the engine, grad mode, its measures undone), per grade cell."""
        return [f"{grade_id}: {', '.join(verdict.evidence)}"
                for grade_id, verdict in self.verdicts.items() if verdict.evidence]

    @property
    def gradeable(self):
        return self.ending is not None

    @property
    def verified(self):
        return bool(self.verdicts)

    @property
    def evidence(self):
        """Evidence from the code itself (the scan's findings, the runner's capability hits)."""
        return bool(self.findings or self.capability_hits)

    @property
    def needs_review(self):
        """A person must decide: a problem, a disagreement with verification, or suspicious code."""
        return bool(self.problems or self.disagreements or self.evidence) or not self.gradeable

    def flags(self, needs_manual_grade=False):
        """The CSV's flags: what happened to this submission, sorted."""
        flags = set()
        if self.needs_review or needs_manual_grade:
            flags.add("manual_review")
        if self.findings:
            flags.add("code_review")
        if self.capability_hits:  # evidence: manual_review is already set
            flags.add("capability_used")
        if self.ending in (Ending.TIMED_OUT, Ending.KERNEL_DIED):
            flags.add(self.ending.value)
        if self.repairs:
            flags.add("repaired")
        if self.disagreements:
            flags.add("possible_tampering" if self.evidence else "verification_differs")
        return sorted(flags)

    def notes(self):
        """One line for the CSV: a few items of each kind, each cut short."""
        kinds = [self.problems, [d.describe() for d in self.disagreements], self.capability_hits,
                 [f.describe() for f in self.findings], self.repairs]
        return "; ".join(item for kind in kinds for item in _bounded(kind))


def _bounded(items):
    items = [str(i) if len(str(i)) <= MAX_NOTE_CHARS else str(i)[:MAX_NOTE_CHARS - 1] + "…" for i in items]
    if len(items) > MAX_NOTE_ITEMS:
        return items[:MAX_NOTE_ITEMS] + [f"(+{len(items) - MAX_NOTE_ITEMS} more)"]
    return items
