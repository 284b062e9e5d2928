#!/bin/sh
# Gradescope runs this once, when it builds the autograder's image: install
# the Debian packages and build the kit kernel, so that grading only boots.
# KDKIT_GS_ROOT replaces /autograder, for testing the bundle elsewhere.
set -eu
root=${KDKIT_GS_ROOT:-/autograder}
cd "$root/source/kdkit"
make setup
