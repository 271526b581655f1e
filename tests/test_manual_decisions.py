"""A person's decision stands: a regrade keeps a score graded by hand, and sends it back to the
manual-review queue (with both results) only when the submission changed since.

The gradebook is built by hand; autograde's effect on it is nbgrader's ``SaveAutoGrades`` rule
(the notebook's points into ``auto_score``, any cell holding a manual score flagged), and a
person grades through nbgrader's API exactly as formgrader's grade handler does.
"""
import json
from types import SimpleNamespace

from nbgrader.api import Gradebook

from grader.outcome import Ending, StudentOutcome, Verdict
from grader.steps import score

CELLS = {"test_x": 2, "test_y": 3}


def course_with(tmp_path, students):
    course = SimpleNamespace(db_url=f"sqlite:///{tmp_path / 'gradebook.db'}", course_id="backprop",
                             work=tmp_path / "work",
                             submission=lambda student, assignment: tmp_path / "submitted" / student / assignment)
    with Gradebook(course.db_url, course.course_id) as gb:
        gb.add_assignment("a")
        gb.add_notebook("nb", "a")
        for cell, points in CELLS.items():
            gb.add_grade_cell(cell, "nb", "a", max_score=points, cell_type="code")
        for student in students:
            gb.add_student(student)
            gb.add_submission("a", student)
            submit(course, student, "return grad_output * y, grad_output * x")
    return course


def submit(course, student, answer):
    folder = course.submission(student, "a")
    folder.mkdir(parents=True, exist_ok=True)
    cells = [{"cell_type": "code", "source": answer, "metadata": {}, "outputs": [], "execution_count": 3}]
    (folder / "nb.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def grade_run(course, student, notebook, verified):
    """One regrade of ``student``, in the batch's order: the recorder opens, autograde records the
    notebook's points, then the grader records its verdicts."""
    outcome = StudentOutcome(student, ending=Ending.COMPLETED,
                             verdicts={cell: Verdict(passed, "why") for cell, passed in verified.items()})
    with score.recorder(course, "a") as record:
        with Gradebook(course.db_url, course.course_id) as gb:
            for cell, points in notebook.items():
                grade = gb.find_grade(cell, "nb", "a", student)
                grade.auto_score = points
                grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
            gb.db.commit()
        record(outcome)
    return outcome


def formgrader_save(course, student, cell, manual_score):
    """What formgrader's ``GradeHandler.put`` does when a person saves a score."""
    with Gradebook(course.db_url, course.course_id) as gb:
        grade = gb.find_grade_by_id(gb.find_grade(cell, "nb", "a", student).id)
        grade.manual_score, grade.extra_credit = manual_score, None
        grade.needs_manual_grade = grade.manual_score is None and grade.auto_score is None
        gb.db.commit()


def state(course, student):
    """({cell: (score, manual_score, needs_manual_grade)}, total)."""
    with Gradebook(course.db_url, course.course_id) as gb:
        grades = {cell: gb.find_grade(cell, "nb", "a", student) for cell in CELLS}
        return ({c: (g.score, g.manual_score, g.needs_manual_grade) for c, g in grades.items()},
                gb.find_submission("a", student).score)


TAMPERED = dict(notebook={"test_x": 2, "test_y": 3}, verified={"test_x": False, "test_y": True})


def test_the_grader_writes_the_verified_points_and_flags_a_disagreement(tmp_path):
    course = course_with(tmp_path, ["alice"])
    outcome = grade_run(course, "alice", **TAMPERED)
    assert state(course, "alice") == ({"test_x": (0, 0, True), "test_y": (3, 3, False)}, 3)
    assert [(d.grade_id, d.notebook_points, d.verified_points) for d in outcome.disagreements] == [("test_x", 2, 0)]
    assert outcome.problems == []


def test_a_regrade_of_the_same_submission_keeps_the_hand_grade_on_every_run(tmp_path):
    course = course_with(tmp_path, ["alice", "bob"])
    for student in ("alice", "bob"):
        grade_run(course, student, **TAMPERED)
    formgrader_save(course, "alice", "test_x", 1.5)
    for _ in range(2):
        outcome = grade_run(course, "alice", **TAMPERED)
        assert state(course, "alice") == ({"test_x": (1.5, 1.5, False), "test_y": (3, 3, False)}, 4.5)
        assert (outcome.disagreements, outcome.problems, outcome.needs_review) == ([], [], False)
        assert outcome.graded_by_hand == ["test_x"]  # its feedback shows no verdict as the score
    # bob, graded by no one, is still the grader's: verified points, the disagreement flagged
    outcome = grade_run(course, "bob", **TAMPERED)
    assert state(course, "bob") == ({"test_x": (0, 0, True), "test_y": (3, 3, False)}, 3)
    assert len(outcome.disagreements) == 1 and outcome.graded_by_hand == []


def test_a_person_confirming_the_graders_score_is_a_decision_too(tmp_path):
    course = course_with(tmp_path, ["alice"])
    grade_run(course, "alice", **TAMPERED)
    formgrader_save(course, "alice", "test_x", 0)  # the same number, no longer waiting
    outcome = grade_run(course, "alice", **TAMPERED)
    assert state(course, "alice") == ({"test_x": (0, 0, False), "test_y": (3, 3, False)}, 3)
    assert (outcome.disagreements, outcome.needs_review) == ([], False)


def test_a_resubmission_sends_the_hand_grade_back_to_the_queue_with_both_results(tmp_path):
    course = course_with(tmp_path, ["alice"])
    grade_run(course, "alice", **TAMPERED)
    formgrader_save(course, "alice", "test_x", 1.5)
    submit(course, "alice", "return grad_output * y, grad_output * x  # resubmitted")
    requeued = dict(notebook={"test_x": 2, "test_y": 3}, verified={"test_x": True, "test_y": True})
    for _ in range(2):  # waiting for the person, however often the class is graded meanwhile
        outcome = grade_run(course, "alice", **requeued)
        assert state(course, "alice") == ({"test_x": (1.5, 1.5, True), "test_y": (3, 3, False)}, 4.5)
        assert outcome.problems == [
            "test_x: graded by hand (1.5) before the submission changed; now verified 2 (notebook 2): "
            "grade it again / 다시 채점 필요"]
        assert outcome.needs_review and outcome.disagreements == []
    formgrader_save(course, "alice", "test_x", 2)
    outcome = grade_run(course, "alice", **requeued)
    assert state(course, "alice") == ({"test_x": (2, 2, False), "test_y": (3, 3, False)}, 5)
    assert (outcome.problems, outcome.needs_review) == ([], False)


def test_rerunning_the_same_answers_is_not_a_resubmission(tmp_path):
    course = course_with(tmp_path, ["alice"])
    grade_run(course, "alice", **TAMPERED)
    formgrader_save(course, "alice", "test_x", 1.5)
    path = course.submission("alice", "a") / "nb.ipynb"
    notebook = json.loads(path.read_text())
    notebook["cells"][0]["execution_count"] = 9
    notebook["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "again"}]
    path.write_text(json.dumps(notebook))
    outcome = grade_run(course, "alice", **TAMPERED)
    assert state(course, "alice")[1] == 4.5 and outcome.problems == []


def test_a_manual_score_the_grader_has_no_mark_for_is_a_persons(tmp_path):
    course = course_with(tmp_path, ["alice"])
    formgrader_save(course, "alice", "test_y", 1)  # graded before the grader ever ran
    grade_run(course, "alice", **TAMPERED)
    assert state(course, "alice") == ({"test_x": (0, 0, True), "test_y": (1, 1, False)}, 1)
