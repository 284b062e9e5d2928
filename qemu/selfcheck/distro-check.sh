#!/usr/bin/env bash
# Try the kit on a fresh machine: a minimal Debian chroot (debootstrap
# --variant=minbase), a clone of this kit in it, and the README's commands
# run there as a new user would, with nothing added by hand.
# Usage (as root): qemu/selfcheck/distro-check.sh bookworm|trixie [test|gradescope|container]
#   test        apt-get install make, then make test LAB=hello SRC=solutions
#   gradescope  the autograder bundle: setup.sh, then run_autograder on the
#               hello solution, in /autograder of the chroot (PACK=1:
#               with this host's built kernel in the bundle)
#   gradescope-docker  Gradescope's container, stood in for with Docker's
#               default profile and limits (gradescope-docker.sh)
#   container   the chroot becomes the debian base image; the kit's
#               Containerfile is built on it and runs make test there
#               (PODMAN= sets the command: in a nested sandbox, podman may
#               need --runtime runc and CONTAINERS_CONF with no ulimits)
# Without Debian's linux-source-6.1 in the release (trixie), the kernel
# comes through the download path: this host serves its own Debian source
# on 127.0.0.1 (KERNEL_URL, KERNEL_SHA256). Too slow for make check (about
# 5 to 10 minutes); KEEP=1 keeps the chroot.
set -euo pipefail

distro=${1:?usage: distro-check.sh bookworm|trixie [test|gradescope]}
mode=${2:-test}
mirror=${MIRROR:-http://deb.debian.org/debian}
kit=$(cd "$(dirname "$0")/../.." && pwd)
root=${ROOT:-/var/tmp/kdkit-distro-$distro}
case $distro in bookworm | trixie) ;; *) echo "distro-check: use bookworm or trixie" >&2; exit 2 ;; esac
case $mode in
test | gradescope | container) ;;
gradescope-docker) exec bash "$(dirname "$0")/gradescope-docker.sh" "$distro" ;;
*) echo "distro-check: mode is test, gradescope, gradescope-docker or container" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "distro-check: run as root (debootstrap, chroot, mounts)" >&2; exit 2; }
for tool in debootstrap bwrap; do
	command -v $tool >/dev/null || { echo "distro-check: apt-get install debootstrap bubblewrap" >&2; exit 2; }
done

server=
# Every run leaves its row in docs/platforms.inc, passed or not: what it
# ran, the result (or the step it stopped at), the time and the versions.
recorded= versions=
check=$mode${PACK:+ PACK=1}
t0=$(date +%s)
at=$(cd "$kit/qemu" && python3 -c 'from selfcheck.timings import commit; print(commit())')
probe=$(cd "$kit/qemu" && python3 -c 'from selfcheck.platforms import PROBE; print(PROBE)')
record() {
	recorded=1
	PYTHONPATH="$kit/qemu" python3 -m selfcheck.platforms "$distro" "$check" "$1" \
		"$(( $(date +%s) - t0 ))" "$versions" "$at" || true
}
cleanup() {
	status=$?
	[ -n "$recorded" ] || record "FAILED (exit $status) at: ${last_step:-the start}"
	for m in dev/pts dev sys proc; do
		mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
	done
	[ -n "$server" ] && kill "$server" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$root"
}
trap cleanup EXIT INT TERM

step() { last_step=$*; echo "distro-check: [$(( $(date +%s) - t0 )) s] $*"; }
# The versions a user of this release gets, read in the chroot.
read_versions() { versions=$(in_chroot sh -c "$probe" 2>&1 || true); }
# hello's case count, from its suites: what a passing make test prints.
hello_passed="$(cd "$kit/qemu" && python3 -c 'from harness import lab; print(lab.case_count("hello"))') passed, 0 failed"

rm -rf "$root"
step "debootstrap --variant=minbase $distro"
debootstrap --variant=minbase "$distro" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
	{ tail -5 "$root.debootstrap.log"; exit 1; }
rm -f "$root.debootstrap.log"
for m in proc sys dev dev/pts; do mount --bind "/$m" "$root/$m"; done
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
step "fresh $distro: $(chroot "$root" dpkg-query -W | wc -l) packages"

# The kernel by download where the release has no linux-source-6.1.
env=()
if ! chroot "$root" sh -c 'apt-get update -qq && apt-cache pkgnames linux-source-6.1 | grep -x linux-source-6.1 >/dev/null'; then
	tarball=/usr/src/linux-source-6.1.tar.xz
	[ -f "$tarball" ] || { echo "distro-check: this host needs linux-source-6.1 to serve" >&2; exit 2; }
	serve=$(mktemp -d)
	ln -s "$tarball" "$serve/linux-6.1.tar.xz"
	port=$((20000 + RANDOM % 10000))
	python3 -m http.server --bind 127.0.0.1 --directory "$serve" "$port" >/dev/null 2>&1 &
	server=$!
	env=(KERNEL_URL="http://127.0.0.1:$port/linux-6.1.tar.xz"
		KERNEL_SHA256="$(sha256sum "$tarball" | cut -d' ' -f1)")
	step "$distro has no linux-source-6.1: serving this host's on 127.0.0.1:$port"
fi

# Entered as a container would be (pivot_root, through bwrap), not with
# chroot: the kernel refuses user namespaces to a chrooted process, and the
# grader's own sandbox needs them.
in_chroot() {
	bwrap --bind "$root" / --dev-bind /dev /dev --proc /proc --bind /sys /sys \
		env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb "${env[@]}" "$@"
}

if [ "$mode" = container ]; then
	podman=${PODMAN:-podman}
	tag=docker.io/library/debian:$([ "$distro" = bookworm ] && echo 12 || echo 13)
	for m in dev/pts dev sys proc; do umount -l "$root/$m"; done
	step "$podman import of the chroot as $tag"
	tar -C "$root" -c . | $podman import - "$tag" >/dev/null
	sed "s|^FROM .*|FROM $tag|" "$kit/Containerfile" >"$root.Containerfile"
	$podman volume rm -f kdkit-check-cache >/dev/null 2>&1 || true
	step "$podman build of the Containerfile"
	# The host network at build: apt reaches the archive where no bridge is set up.
	$podman build --network host -q -t kdkit-check -f "$root.Containerfile" "$kit" >/dev/null
	rm -f "$root.Containerfile"
	step "README: $podman run ... make test LAB=hello SRC=solutions"
	last=$($podman run --rm -v "$kit:/kdkit" -v kdkit-check-cache:/cache kdkit-check \
		make test LAB=hello SRC=solutions 2>&1 | tail -n 1)
	step "done: $last"
	versions=$($podman run --rm kdkit-check sh -c "$probe" 2>&1 || true)
	record "$podman build of the Containerfile on a $distro image, then make test LAB=hello SRC=solutions in it: $last"
	[ "$last" = "$hello_passed" ]
elif [ "$mode" = test ]; then
	git clone -q "$kit" "$root/root/kdkit"
	step "README: apt-get install make"
	in_chroot sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q make >/dev/null'
	step "README: make test LAB=hello SRC=solutions"
	in_chroot sh -c 'cd /root/kdkit && make test LAB=hello SRC=solutions' 2>&1 | tee "$root.out" |
		grep -E '^(setup|kernel-source|build-kernel|kdkit:|[0-9]+ passed)' || true
	last=$(tail -n 1 "$root.out")
	kernel=$(grep -o 'Linux 6\.1\.[0-9]*' "$root.out" | head -n 1 || true)
	rm -f "$root.out"
	read_versions
	step "done: $last; $(chroot "$root" dpkg-query -W | wc -l) packages; $(echo "$versions" | tr "\n" " ")"
	[ "$last" = "$hello_passed" ] || { record "make test LAB=hello SRC=solutions: $last, expected $hello_passed"; exit 1; }
	summary="fresh minbase chroot, the README's commands only (${kernel:-the kernel}${env:+ by the download path}): make test LAB=hello SRC=solutions $last"
	# What make debug, make watch and make docs install, and the editor file.
	step "the student's tools: packages for debug, watch, docs; make compile_commands.json"
	tools=$(in_chroot sh -c 'cd /root/kdkit && bash qemu/deps.sh debug watch docs >/dev/null &&
		make -s compile_commands.json && for t in gdb inotifywait dot; do command -v $t; done' 2>&1)
	echo "$tools" | tail -n 4
	if echo "$tools" | grep -q '/dot$'; then
		record "$summary; make debug, watch and docs packages and make compile_commands.json installed"
	else
		record "$summary; the student's tools did not install: $(echo "$tools" | tail -n 1)"
		exit 1
	fi
else
	# PACK=1: the bundle carries this host's built kernel.
	(cd "$kit" && make -s gradescope LABS=hello ${PACK:+PACK=1} OUT="$root.zip") >/dev/null
	size=$(du -m "$root.zip" | cut -f1)
	mkdir -p "$root/autograder/source" "$root/autograder/submission"
	(cd "$root/autograder/source" && python3 -m zipfile -e "$root.zip" . && rm "$root.zip")
	chmod +x "$root/autograder/source/setup.sh" "$root/autograder/source/run_autograder"
	cp "$kit/solutions/hello/hello.c" "$root/autograder/submission/"
	step "Gradescope: setup.sh (KDKIT_GS_ROOT=/autograder)"
	start=$(date +%s)
	in_chroot sh -c 'apt-get install -y -q make >/dev/null; cd /autograder/source && KDKIT_GS_ROOT=/autograder sh setup.sh' 2>&1 |
		grep -E '^(setup|kernel-source|build-kernel)' || true
	setup=$(( $(date +%s) - start ))
	step "Gradescope: run_autograder on the hello solution"
	cp "$root/autograder/source/run_autograder" "$root/autograder/run_autograder"
	in_chroot sh -c 'KDKIT_GS_ROOT=/autograder /autograder/run_autograder'
	score=$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["score"], sum(t.get("max_score", 0) for t in r.get("tests", [])) or r.get("output", "")[-600:])' "$root/autograder/results/results.json")
	step "done: results.json scores $score"
	read_versions
	record "the bundle (${size} MB${PACK:+, PACK=1: the kernel packed}): setup.sh${env:+ (kernel downloaded)} in a fresh minbase system (KDKIT_GS_ROOT) took $setup s; run_autograder: the hello solution scores ${score% *} of ${score#* }"
	[ "${score% *}" = "${score#* }" ]
fi
