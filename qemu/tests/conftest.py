"""Make the kit's packages in qemu/ (harness, kernel, grader, course,
selfcheck) and kdkit.py importable from the tests."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
