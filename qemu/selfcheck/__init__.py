"""The kit checking itself: make check, the docs checks, grading benchmarks, fresh-distro installs."""
