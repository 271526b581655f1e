"""Verification specs: per assignment, the gradient cases the trusted verifier checks (see verify.py).

Instructor-only material: never copied into a release or visible inside the sandbox.
"""
