"""Canvas's gradebook import CSV from a gradebook, read back as Canvas documents the format."""
import csv
from datetime import datetime

from nbgrader.api import Gradebook

from grader import cli
from grader.course import REPO_ROOT

ROSTER = ("student_id,name,canvas_id,sis_user_id,sis_login_id,section\n"
          "ann,Ann Kim,1001,2026-0001,ann@example.edu,Section 1\n"
          "ben,Ben Lee,1002,2026-0002,ben@example.edu,Section 1\n"
          "cho,조 민수,1003,2026-0003,cho@example.edu,Section 2\n"
          "dan,Dan Oh,1004,2026-0004,dan@example.edu,Section 2\n")
CALENDAR = ("assignment,due,lms_name,lms_id\n"
            "a1_backprop,2026-03-16T23:59:00+09:00,Backprop 1: chain rule,4711\n")
HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Backprop 1: chain rule (4711)"]


def graded_course(a1_generated, tmp_path):
    """a1 in the gradebook: ann full marks, ben a cell lost, cho a cell waiting for a person,
    dan nothing submitted; roster and calendar in grader/."""
    course = a1_generated(tmp_path / "course")
    (course.grader / "roster.csv").write_text(ROSTER, encoding="utf-8")
    (course.grader / "calendar.csv").write_text(CALENDAR, encoding="utf-8")
    with Gradebook(course.db_url, course.course_id) as gb:
        cells = [(nb.name, cell.name) for nb in gb.find_assignment("a1_backprop").notebooks for cell in nb.grade_cells]
        for student, lost, waiting in (("ann", None, False), ("ben", "test_mul", False), ("cho", "test_add", True)):
            gb.update_or_create_student(student)
            gb.add_submission("a1_backprop", student, timestamp=datetime(2026, 3, 16))
            for notebook, cell in cells:
                grade = gb.find_grade(cell, notebook, "a1_backprop", student)
                grade.auto_score = 0 if cell == lost else grade.max_score
                grade.needs_manual_grade = waiting and cell == lost
        gb.update_or_create_student("dan")
        gb.db.commit()
    return course


def read_canvas(path):
    """Canvas's reading: the header, the Points Possible row, then {SIS User ID: row}."""
    with open(path, newline="", encoding="utf-8") as f:
        header, possible, *rows = list(csv.reader(f))
    return header, possible, {row[2]: dict(zip(header, row)) for row in rows}


def test_the_canvas_file_holds_each_total_and_leaves_unreviewed_and_missing_empty(a1_generated, tmp_path):
    course = graded_course(a1_generated, tmp_path)
    out = tmp_path / "canvas.csv"
    assert cli.main(["--course", str(course.root), "export", "a1_backprop", "--to", str(out)]) == 0
    header, possible, rows = read_canvas(out)
    assert header == HEADER
    assert possible == ["Points Possible", "", "", "", "", "12"]
    column = HEADER[-1]
    assert {sis: row[column] for sis, row in rows.items()} == \
        {"2026-0001": "12", "2026-0002": "9", "2026-0003": "", "2026-0004": ""}
    assert rows["2026-0003"] == {"Student": "조 민수", "ID": "1003", "SIS User ID": "2026-0003",
                                 "SIS Login ID": "cho@example.edu", "Section": "Section 2", column: ""}


def test_a_student_the_graders_report_left_for_review_is_empty(a1_generated, tmp_path):
    course = graded_course(a1_generated, tmp_path)
    report = course.grader / "reports" / "a1_backprop"
    report.mkdir(parents=True)
    (report / "grades.csv").write_text("student,total,flags\nann,,code_review;manual_review\nben,9,\n")
    out = tmp_path / "canvas.csv"
    cli.main(["--course", str(course.root), "export", "--to", str(out)])
    assert {sis: row[HEADER[-1]] for sis, row in read_canvas(out)[2].items()} == \
        {"2026-0001": "", "2026-0002": "9", "2026-0003": "", "2026-0004": ""}


def test_nbgraders_own_export_command_writes_the_same_file(a1_generated, tmp_path):
    course = graded_course(a1_generated, tmp_path)
    ours, stock = tmp_path / "ours.csv", tmp_path / "stock.csv"
    cli.main(["--course", str(course.root), "export", "--to", str(ours)])
    course.nbgrader("export", "--exporter=grader.export.CanvasExportPlugin", "--to", str(stock),
                    env={"PYTHONPATH": str(REPO_ROOT)})
    assert stock.read_bytes() == ours.read_bytes()


def test_an_assignment_without_a_canvas_id_is_the_instructors_error(a1_generated, tmp_path, capsys):
    course = graded_course(a1_generated, tmp_path)
    (course.grader / "calendar.csv").write_text("assignment,due,lms_name,lms_id\na1_backprop,,,\n")
    assert cli.main(["--course", str(course.root), "export", "--to", str(tmp_path / "x.csv")]) == 1
    assert "no lms_id in grader/calendar.csv for a1_backprop" in capsys.readouterr().err
