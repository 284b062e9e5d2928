#!/bin/sh
# Gradescope runs this once, when it builds the autograder's image (Ubuntu,
# Fedora or Debian): install what the kit needs, then either unpack the
# bundle's prebuilt kernel or build the one flavour grading uses.
# KDKIT_GS_ROOT replaces /autograder, for testing the bundle elsewhere.
set -eu
root=${KDKIT_GS_ROOT:-/autograder}
cd "$root/source/kdkit"
flavour=$(cat .gradescope-flavour)
# Grading builds students' files only in a sandbox: fail the image build,
# not every submission, where bubblewrap cannot make one.
sandbox_works() {
	PYTHONPATH=qemu python3 -c 'import sys; from harness import sandbox
try:
    sandbox.require()
except sandbox.SandboxError as e:
    sys.exit(f"setup: this image cannot grade: {e}")'
}
# Each submission then restores a VM saved here instead of booting one.
save_vms() {
	strict=
	[ "$flavour" = strict ] && strict=--strict
	"$@" python3 qemu/kdkit.py save "$(cat .gradescope-labs)" $strict ||
		echo "setup: no saved VM; every submission boots its VMs cold (slower, still correct)"
}
if [ -f kernel-pack.tar.gz ]; then
	# Building modules needs only the compiler and make; no kernel build.
	bash qemu/deps.sh modules run grade
	sandbox_works
	if src=$(PYTHONPATH=qemu python3 -m kernel.pack unpack kernel-pack.tar.gz "$root/kdkit-cache"); then
		echo "$src" > "$root/kdkit-cache/kernel-src"
		echo "setup: the bundle's $flavour kernel is unpacked in $root/kdkit-cache"
		save_vms env KDKIT_CACHE="$root/kdkit-cache" KERNEL_SRC="$src"
		exit 0
	fi
	echo "setup: the kernel pack cannot be used on this image; building the kernel instead"
	rm -rf "$root/kdkit-cache"
fi
bash qemu/deps.sh build run grade
sandbox_works
bash qemu/kernel/build.sh "$flavour"
save_vms env
