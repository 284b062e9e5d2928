#!/usr/bin/env bash
# Build the kit kernel of one flavour (fast or strict) into the cache, once.
# Usage: build-kernel.sh [--dir] FLAVOUR
#   --dir only prints the build directory, which is keyed by the Debian
#   source version and a hash of the config fragments, so an unchanged
#   fragment costs nothing and a changed one builds afresh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${KDKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kdkit}
tarball=/usr/src/linux-source-6.1.tar.xz
jobs=${JOBS:-$(nproc)}

print_only=
if [ "${1:-}" = --dir ]; then print_only=1; shift; fi
flavour=${1:-fast}
case $flavour in
fast) fragments="$here/kernel.config" ;;
strict) fragments="$here/kernel.config $here/strict.config" ;;
*) echo "build-kernel: unknown flavour '$flavour'; use fast or strict" >&2; exit 2 ;;
esac

version=$(dpkg-query -W -f '${Version}' linux-source-6.1 2>/dev/null) || {
	echo "build-kernel: linux-source-6.1 is not installed; run 'make setup'" >&2
	exit 1
}
patches=$(ls "$here"/patches/*.patch 2>/dev/null || true)
# shellcheck disable=SC2086
patch_key=$(cat /dev/null $patches | sha256sum | cut -c1-8)
# Comments explain the options (the docs show them) and do not change the
# kernel: only option lines, "# CONFIG_X is not set" included, make the key.
# shellcheck disable=SC2086
key=$( (awk '/^# CONFIG_/ || (!/^#/ && NF)' $fragments; cat /dev/null $patches) |
	sha256sum | cut -c1-12)
src=$cache/src/$version-$patch_key
out=$cache/kernel/$version-$flavour-$key
if [ -n "$print_only" ]; then echo "$out"; exit 0; fi
[ -f "$out/.kdkit-built" ] && exit 0

# Two runs that both find no kernel (two terminals, a test and a grade)
# build it once: the second waits for the first, then finds it built.
mkdir -p "$cache/kernel"
exec 9>"$out.lock"
if ! flock -n 9; then
	echo "build-kernel: another run is building the $flavour kernel; waiting for it"
	flock 9
fi
[ -f "$out/.kdkit-built" ] && exit 0

if [ ! -d "$src" ]; then
	echo "build-kernel: extracting $tarball into $src"
	mkdir -p "$cache/src"
	tmp=$(mktemp -d "$cache/src/.extract.XXXXXX")
	tar -xf "$tarball" -C "$tmp"
	# The kit's few patches to the kernel, each with its reason inside.
	for p in $patches; do
		patch -s -p1 -d "$tmp/linux-source-6.1" < "$p"
	done
	mv "$tmp/linux-source-6.1" "$src"
	rmdir "$tmp"
fi

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
	echo "build-kernel: the config lost options above; fix qemu/*.config" >&2
	exit 1
fi

echo "build-kernel: building ($jobs jobs); a first build takes several minutes"
start=$(date +%s)
make -s -C "$src" O="$out" -j"$jobs" bzImage modules_prepare
# External modules link against the symbol versions of the built kernel.
make -s -C "$src" O="$out" -j"$jobs" modules >/dev/null
echo "build-kernel: $flavour kernel built in $(( $(date +%s) - start )) s"
touch "$out/.kdkit-built"
# Builds of this flavour from older fragments are dead weight now.
for old in "$cache/kernel/$version-$flavour-"*; do
	case $old in "$out" | "$out.lock") ;; *) rm -rf "$old" ;; esac
done
for old in "$cache/src/$version"*; do
	case $old in "$src") ;; *) grep -qs "$old/Makefile" "$cache"/kernel/*/Makefile || rm -rf "$old" ;; esac
done
