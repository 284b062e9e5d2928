#!/usr/bin/env bash
# Build the kit kernel of one flavour (fast or strict) into the cache, once.
# Usage: kernel/build.sh [--dir|--built] FLAVOUR
#   --dir only prints the build directory, which is keyed by the source's
#   version and identity (kernel/source.py) and a hash of the config
#   fragments, so an unchanged fragment costs nothing and a changed one
#   builds afresh. --built only says, by its exit status, whether that
#   kernel is built (then building modules needs no kernel build tools).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
# kernel/source.py owns the cache's place, the build folders and their marks.
source_py() { PYTHONPATH="$here/.." "$py" -m kernel.source "$@"; }
cache=$(source_py cache)
jobs=${JOBS:-$(nproc)}

print_only=
case ${1:-} in --dir | --built) print_only=$1; shift ;; esac
flavour=${1:-fast}
case $flavour in
fast | strict) ;;
*) echo "build-kernel: unknown flavour '$flavour'; use fast or strict" >&2; exit 2 ;;
esac
fragments="$here/kernel.config"
[ "$flavour" = strict ] && fragments="$fragments $here/strict.config"

if [ "$print_only" = --dir ]; then
	source_py paths "$flavour" | sed -n 2p
	exit "${PIPESTATUS[0]}"
elif [ "$print_only" = --built ]; then
	built=$(source_py paths "$flavour" 2>/dev/null | sed -n 3p)
	[ -n "$built" ] && [ -f "$built" ]
	exit
fi
mkdir -p "$cache/kernel" "$cache/src"
# One run at a time finds, fetches and unpacks the source.
{ flock 8; source_py prepare >/dev/null; } 8>"$cache/src/.lock"
{ read -r src; read -r out; read -r built; } < <(source_py paths "$flavour")
[ -n "${built:-}" ] || exit 1
[ -f "$built" ] && exit 0

# Two runs that both find no kernel (two terminals, a test and a grade)
# build it once: the second waits for the first, then finds it built.
exec 9>"$out.lock"
if ! flock -n 9; then
	echo "build-kernel: another run is building the $flavour kernel; waiting for it"
	flock 9
fi
[ -f "$built" ] && exit 0

echo "build-kernel: configuring the $flavour kernel in $out"
rm -rf "$out"
mkdir -p "$out"
make -s -C "$src" O="$out" tinyconfig >/dev/null
# shellcheck disable=SC2086
"$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" $fragments >/dev/null
make -s -C "$src" O="$out" olddefconfig >/dev/null

# A dependency that is not met drops an option without a word: refuse that.
missing=0
# shellcheck disable=SC2086
while read -r want; do
	case $want in
	CONFIG_*=*) grep -qxF "$want" "$out/.config" || { echo "build-kernel: $want did not stick" >&2; missing=1; } ;;
	"# CONFIG_"*" is not set")
		opt=${want#"# "}; opt=${opt%% *}
		grep -q "^$opt=" "$out/.config" && { echo "build-kernel: $opt is set, but the fragment unsets it" >&2; missing=1; } ;;
	esac
done < <(cat $fragments)
if [ "$missing" -ne 0 ]; then
	echo "build-kernel: the config lost options above; fix qemu/kernel/*.config" >&2
	exit 1
fi

echo "build-kernel: building ($jobs jobs); a first build takes several minutes"
start=$(date +%s)
make -s -C "$src" O="$out" -j"$jobs" bzImage modules_prepare
# External modules link against the symbol versions of the built kernel.
make -s -C "$src" O="$out" -j"$jobs" modules >/dev/null
echo "build-kernel: $flavour kernel built in $(( $(date +%s) - start )) s"
touch "$built"
# Builds of this flavour from older fragments are dead weight now, and so
# are unpacked sources no build uses.
ident=$(basename "$out"); ident=${ident%%-"$flavour"-*}
for old in "$cache/kernel/$ident-$flavour-"*; do
	case $old in "$out" | "$out.lock") ;; *) rm -rf "$old" ;; esac
done
for old in "$cache"/src/*/; do
	old=${old%/}
	case $old in "$src") ;; *) grep -qsF "$old/Makefile" "$cache"/kernel/*/Makefile || rm -rf "$old" ;; esac
done
