"""Grading: submissions in, rubric scores out (terminal, results.json, JUnit, CSV), and the Gradescope bundle."""
