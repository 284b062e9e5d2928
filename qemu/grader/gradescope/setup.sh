#!/bin/sh
# Gradescope runs this once, when it builds the autograder's image (Ubuntu,
# Fedora or Debian): install what the kit needs, then either unpack the
# bundle's prebuilt kernel or build the one flavour grading uses, and make
# everything a submission would otherwise make again (the sandbox, the
# kit's test objects, the saved VMs), as run_autograder will use them.
# KDKIT_GS_ROOT replaces /autograder, for testing the bundle elsewhere.
set -eu
root=${KDKIT_GS_ROOT:-/autograder}
cd "$root/source/kdkit"
flavour=$(cat .gradescope-flavour)
labs=$(cat .gradescope-labs)
strict=
[ "$flavour" = strict ] && strict=--strict
# The jail (the sandbox where bubblewrap cannot run, as in Gradescope's
# containers) builds as a user of its own, made in a real image only (a
# test's KDKIT_GS_ROOT leaves the machine's users alone).
if [ -z "${KDKIT_GS_ROOT:-}" ] && [ "$(id -u)" -eq 0 ] && ! id kdkit-build >/dev/null 2>&1; then
	useradd --system --no-create-home --shell /usr/sbin/nologin kdkit-build 2>/dev/null ||
		echo "setup: no user kdkit-build (useradd failed); the jail builds as nobody"
fi
# Grading builds students' files only in a sandbox: fail the image build,
# not every submission, where none can be made; make it ready once.
sandbox_ready() {
	said=$("$@" env PYTHONPATH=qemu python3 -m harness.kbuild sandbox 2>&1) ||
		{ echo "setup: ${said#sandbox: }"; exit 1; }
	echo "setup: ${said#sandbox: }"
}
# Grade the skeletons once, as run_autograder grades (its cache, its
# kernel, its sandbox): the kit's test objects are compiled and kept, and
# each lab's VM is booted and saved with the keys a submission's run has.
warm() {
	"$@" env PYTHONPATH=qemu python3 -m grader.grade --submission labs --labs "$labs" \
		--out /tmp/kdkit-warm --jobs 1 $strict >/tmp/kdkit-warm.log 2>&1 ||
		{ tail -20 /tmp/kdkit-warm.log; echo "setup: grading the skeletons failed"; exit 1; }
	rm -rf /tmp/kdkit-warm /tmp/kdkit-warm.log
	echo "setup: the kit's test objects are built and each lab's VM is saved"
}
if [ -f kernel-pack.tar.gz ]; then
	# Building modules needs only the compiler and make; no kernel build.
	bash qemu/deps.sh modules run grade
	if src=$(PYTHONPATH=qemu python3 -m kernel.pack unpack kernel-pack.tar.gz "$root/kdkit-cache"); then
		echo "$src" > "$root/kdkit-cache/kernel-src"
		echo "setup: the bundle's $flavour kernel is unpacked in $root/kdkit-cache"
		sandbox_ready env KDKIT_CACHE="$root/kdkit-cache" KERNEL_SRC="$src"
		warm env KDKIT_CACHE="$root/kdkit-cache" KERNEL_SRC="$src"
		exit 0
	fi
	echo "setup: the kernel pack cannot be used on this image; building the kernel instead"
	rm -rf "$root/kdkit-cache"
fi
bash qemu/deps.sh build run grade
bash qemu/kernel/build.sh "$flavour"
sandbox_ready env
warm env
