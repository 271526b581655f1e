"""The steps of grading, one module each, in the order a submission meets them:

collect -> repair -> scan -> autograde (execute, in the sandbox) and verify -> score -> feedback
-> report.
``grader.batch`` runs them; each fills its own field of a ``grader.outcome.StudentOutcome``.
"""
