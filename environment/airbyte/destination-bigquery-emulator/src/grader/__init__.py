"""Grader for the Senior Data Engineer live exercise."""

__version__ = "0.1.0"
