"""One record per student: the CSV's flags and notes derived from what each step found."""
from grader.outcome import Disagreement, Ending, StudentOutcome, Verdict
from grader.steps.scan import Finding


def test_a_clean_graded_submission_has_no_flags():
    assert StudentOutcome("s", ending=Ending.COMPLETED).flags() == []


def test_not_executed_or_with_a_problem_needs_review():
    assert StudentOutcome("s").flags() == ["manual_review"]
    assert StudentOutcome("s", problems=["x.ipynb: empty file"], ending=Ending.COMPLETED).flags() == ["manual_review"]


def test_how_execution_ended_is_a_flag():
    assert StudentOutcome("s", ending=Ending.TIMED_OUT).flags() == ["timed_out"]
    assert StudentOutcome("s", ending=Ending.KERNEL_DIED, repairs=["cells moved"]).flags() == \
        ["kernel_died", "repaired"]


def test_disagreements_go_to_a_person_in_either_direction_without_an_accusation():
    stricter = Disagreement("test_mul", notebook_points=3, verified_points=0, reason="wrong shape")
    lucky = Disagreement("test_mul", notebook_points=0, verified_points=3)
    for disagreement in (stricter, lucky):
        assert StudentOutcome("s", ending=Ending.COMPLETED, disagreements=[disagreement]).flags() == \
            ["manual_review", "verification_differs"]
    assert stricter.describe() == ("test_mul: passed in the notebook, failed verification "
                                   "(notebook 3, verified 0): wrong shape")


def test_possible_tampering_only_with_evidence_from_the_code():
    stricter = Disagreement("test_mul", notebook_points=3, verified_points=0)
    found = Finding("mul", 4, "import gc", "imports gc")
    assert StudentOutcome("s", ending=Ending.COMPLETED, disagreements=[stricter], findings=[found]).flags() == \
        ["code_review", "manual_review", "possible_tampering"]
    used = Verdict(False, "not verified: torch's derivatives", evidence=("aten::mul_backward",))
    hit = StudentOutcome("s", ending=Ending.COMPLETED, disagreements=[stricter], verdicts={"test_mul": used})
    assert hit.flags() == ["capability_used", "manual_review", "possible_tampering"]
    assert hit.notes().endswith("; test_mul: aten::mul_backward")
    assert StudentOutcome("s", ending=Ending.COMPLETED, verdicts={"test_mul": used}).flags() == \
        ["capability_used", "manual_review"]


def test_notes_are_bounded_a_few_items_of_each_kind_each_cut():
    findings = [Finding("mul", line, "x" * 500, "imports gc") for line in range(1, 1001)]
    notes = StudentOutcome("s", ending=Ending.COMPLETED, findings=findings, problems=["p" * 10_000]).notes()
    items = notes.split("; ")
    assert len(items) == 1 + 3 + 1 and items[-1] == "(+997 more)"
    assert all(len(item) <= 200 for item in items) and items[0] == "p" * 199 + "…"


def test_suspicious_code_is_a_review_flag_with_the_line_in_the_notes():
    outcome = StudentOutcome("s", ending=Ending.COMPLETED, repairs=["cells moved"],
                             findings=[Finding("mul", 4, "import gc", "imports gc")])
    assert outcome.flags() == ["code_review", "manual_review", "repaired"]
    assert outcome.notes() == "mul line 4: imports gc: import gc; cells moved"


def test_a_grade_left_for_manual_grading_in_the_gradebook_is_review():
    assert StudentOutcome("s", ending=Ending.COMPLETED).flags(needs_manual_grade=True) == ["manual_review"]
