#!/usr/bin/env bash
# Check what the kit uses (commands, headers, Python modules), not which
# packages dpkg lists, and install what is missing with apt-get (Debian,
# Ubuntu) or dnf (Fedora), as root or through sudo. Idempotent and quick.
# Usage: deps.sh [modules] [build] [run] [grade] [check] [docs]
#   (default: build run). modules: building modules against a built
#   kernel; build: that and building the kernel; run: booting it; grade:
#   the build sandbox; check, docs: make check, make docs
set -euo pipefail

py=${PYTHON:-python3}
tiers=${*:-build run}
missing_apt= missing_dnf= missing_what=

# need WHAT APT-PACKAGE DNF-PACKAGE TEST...: TEST decides; the names say
# what to install when it fails.
need() {
	local what=$1 apt=$2 dnf=$3
	shift 3
	"$@" >/dev/null 2>&1 && return 0
	missing_what="$missing_what, $what"
	missing_apt="$missing_apt $apt"
	missing_dnf="$missing_dnf $dnf"
}
has() { command -v "$1"; }
py_has() { "$py" -c "import $1"; }
# The guest's only userland: it must run without a loader.
static_busybox() {
	local bb
	bb=$(command -v busybox || ls /bin/busybox /usr/sbin/busybox 2>/dev/null | head -n 1) &&
		[ -n "$bb" ] && ! readelf -l "$bb" | grep INTERP >/dev/null
}
static_libc() { [ -f "$(gcc -print-file-name=libc.a)" ]; }
# tomllib is Python 3.11's; older ones read the rubrics with tomli.
toml_reader() { "$py" -c 'import sys
if sys.version_info < (3, 11): import tomli'; }

case " $tiers " in *" build "*) tiers="modules $tiers" ;; esac
for tier in $tiers; do
	case $tier in
	modules)
		need python3 python3 python3 has "$py"
		need make make make has make
		need gcc gcc gcc has gcc
		need "static libc" libc6-dev glibc-static static_libc
		# objtool, a tool of the kernel build, runs at every module build.
		need "libelf headers" libelf-dev elfutils-libelf-devel test -f /usr/include/gelf.h
		need "tomli (Python < 3.11)" python3-tomli python3-tomli toml_reader
		;;
	build)
		need flex flex flex has flex
		need bison bison bison has bison
		need bc bc bc has bc
		need perl perl perl has perl
		need lz4 lz4 lz4 has lz4
		need xz xz-utils xz has xz
		need patch patch patch has patch
		need "openssl headers" libssl-dev openssl-devel test -f /usr/include/openssl/opensslv.h
		;;
	run)
		need qemu-system-x86_64 qemu-system-x86 qemu-system-x86-core has qemu-system-x86_64
		need "static busybox" busybox-static busybox static_busybox
		;;
	grade)
		# Grading compiles students' code only in a sandbox.
		need bubblewrap bubblewrap bubblewrap has bwrap
		;;
	check)
		need pytest python3-pytest python3-pytest py_has pytest
		# Older Pythons borrow this Python's pytest in make check.
		need exceptiongroup python3-exceptiongroup python3-exceptiongroup py_has exceptiongroup
		need tomli python3-tomli python3-tomli py_has tomli
		need git git git has git
		need sparse sparse sparse has sparse
		need dtc device-tree-compiler dtc has dtc
		# make check drives gdb through make debug, and make watch.
		need gdb gdb gdb has gdb
		need inotifywait inotify-tools inotify-tools has inotifywait
		;;
	debug)
		need gdb gdb gdb has gdb
		;;
	watch)
		need inotifywait inotify-tools inotify-tools has inotifywait
		;;
	docs)
		need sphinx python3-sphinx python3-sphinx py_has sphinx
		need furo furo python3-furo py_has furo
		need graphviz graphviz graphviz has dot
		;;
	*) echo "deps: unknown group '$tier'; use modules, build, run, grade, check, debug, watch or docs" >&2; exit 2 ;;
	esac
done

if has apt-get >/dev/null; then pm=apt-get; elif has dnf >/dev/null; then pm=dnf; else pm=; fi
if [ "$(id -u)" -eq 0 ]; then
	sudo=
elif has sudo >/dev/null && sudo -n true 2>/dev/null; then
	sudo=sudo
else
	sudo=none
fi

# Debian's own 6.1 source, when this release packages it; asked for by its
# exact name, since apt would read linux-source-6.1 as a pattern and pick
# linux-source-6.12. Elsewhere the kit downloads the pinned 6.1.y release.
debian_source() {
	[ -z "${KERNEL_SRC:-}" ] && [ "$pm" = apt-get ] && [ ! -f /usr/src/linux-source-6.1.tar.xz ] &&
		apt-cache pkgnames linux-source-6.1 2>/dev/null | grep -x linux-source-6.1 >/dev/null
}

# No package brings a newer Python: say so before anything else fails.
if has "$py" >/dev/null && ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 9))'; then
	echo "setup: kdkit needs Python 3.9 or newer; $py is $("$py" -V 2>&1); give another with PYTHON=" >&2
	exit 1
fi

if [ -z "$missing_what" ]; then
	case " $tiers " in *" build "*) debian_source || exit 0 ;; *) exit 0 ;; esac
	missing_what=", Debian's kernel source"
	missing_apt=" linux-source-6.1"
fi
missing_what=${missing_what#, }
if [ -z "$pm" ]; then
	echo "setup: missing $missing_what; install them with your package manager (Debian names:$missing_apt)" >&2
	exit 1
fi
want=$missing_apt
[ "$pm" = dnf ] && want=$missing_dnf
if [ "$sudo" = none ]; then
	echo "setup: missing $missing_what; run 'sudo make setup', or as root: $pm install$want" >&2
	exit 1
fi

echo "setup: installing$want (for $missing_what)"
if [ "$pm" = apt-get ]; then
	$sudo apt-get update -q
	case " $tiers $want " in *" build "*" linux-source-6.1 "*) ;; *" build "*) debian_source && want="$want linux-source-6.1" ;; esac
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $want
else
	# shellcheck disable=SC2086
	$sudo dnf install -y -q $want
fi
