#!/usr/bin/env bash
# Install the Debian packages the kit needs, if any is missing. Idempotent.
set -euo pipefail

packages="build-essential flex bison bc libelf-dev libssl-dev xz-utils patch
linux-source-6.1 qemu-system-x86 busybox-static python3 python3-pytest sparse
python3-sphinx furo device-tree-compiler"

missing=
for p in $packages; do
	dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	sudo=
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
	sudo=sudo
else
	echo "setup: missing packages:$missing; run 'sudo make setup', or as root: apt-get install$missing" >&2
	exit 1
fi
echo "setup: installing$missing"
$sudo apt-get update -q
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
