"""nbgrader reads this file when run from the repo root; the course's settings live in grader/."""
import os

load_subconfig(os.path.join(os.path.dirname(os.path.abspath(__file__)), "grader", "nbgrader_config.py"))  # noqa: F821
