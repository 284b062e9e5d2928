#!/usr/bin/env bash
# Gradescope's container, stood in for on this machine: Docker's default
# seccomp profile and capabilities (root without CAP_SYS_ADMIN: no user
# namespaces, no mounts), setup.sh run at image build, then run_autograder
# once per submission in a fresh container with --network none --cpus 0.5
# --memory 768m (Gradescope's defaults), and the results read back.
# Usage (as root): qemu/selfcheck/gradescope-docker.sh [bookworm|trixie]
#   CPUS= MEMORY= change the container's limits; STRICT=0 grades on the fast
#   kernel; RUNS=N grades the references and the alternatives N times each
#   (a fresh container each time); KEEP=1 keeps the work folder.
# Needs docker.io (its dockerd is started here if none runs: no registry
# is reached; the base image is a debootstrap minbase, docker-imported).
set -euo pipefail

distro=${1:-bookworm}
kit=$(cd "$(dirname "$0")/../.." && pwd)
work=${ROOT:-/var/tmp/kdkit-gs-docker}
mirror=${MIRROR:-http://deb.debian.org/debian}
cpus=${CPUS:-0.5}
memory=${MEMORY:-768m}
runs=${RUNS:-1}
base=kdkit-gs-base:$distro
image=kdkit-gs-autograder:$distro
case $distro in bookworm | trixie) ;; *) echo "gradescope-docker: use bookworm or trixie" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "gradescope-docker: run as root (dockerd, debootstrap)" >&2; exit 2; }
for tool in docker dockerd debootstrap; do
	command -v $tool >/dev/null || { echo "gradescope-docker: apt-get install docker.io debootstrap" >&2; exit 2; }
done

t0=$(date +%s)
at=$(cd "$kit/qemu" && python3 -c 'from selfcheck.timings import commit; print(commit())')
probe=$(cd "$kit/qemu" && python3 -c 'from selfcheck.platforms import PROBE; print(PROBE)')
recorded=
step() { last_step=$*; echo "gradescope-docker: [$(( $(date +%s) - t0 )) s] $*"; }
rm -rf "$work"
mkdir -p "$work"
# The run's row in docs/platforms.inc (selfcheck/platforms.py), passed or
# not: what each submission scored, in what time and memory.
summary= versions=
record() {
	recorded=1
	PYTHONPATH="$kit/qemu" python3 -m selfcheck.platforms "$distro" "gradescope-docker${RUNS:+ RUNS=$RUNS}" \
		"$1" "$(( $(date +%s) - t0 ))" "$versions" "$at" || true
}
cleanup() {
	status=$?
	[ -n "$recorded" ] || record "FAILED (exit $status) at: ${last_step:-the start}; ${summary:-nothing graded}"
	docker ps -aq --filter label=kdkit-gs | xargs -r docker rm -f >/dev/null 2>&1 || true
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

if ! docker info >/dev/null 2>&1; then
	step "starting dockerd (no iptables, no bridge: containers get --network none)"
	dockerd --iptables=false --bridge=none >/var/log/kdkit-dockerd.log 2>&1 &
	for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
	docker info >/dev/null 2>&1 || { tail -5 /var/log/kdkit-dockerd.log; exit 1; }
fi
docker info 2>/dev/null | grep -q seccomp || { echo "gradescope-docker: this dockerd has no seccomp profile" >&2; exit 1; }

if ! docker image inspect "$base" >/dev/null 2>&1; then
	step "base image $base: debootstrap --variant=minbase $distro, docker import"
	debootstrap --variant=minbase "$distro" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		{ tail -5 "$work/debootstrap.log"; exit 1; }
	tar -C "$work/root" -c . | docker import - "$base" >/dev/null
	rm -rf "$work/root"
fi

step "the bundle: make gradescope PACK=1 ${STRICT:+STRICT=$STRICT }(prebuilt kernel)"
(cd "$kit" && make -s gradescope PACK=1 ${STRICT:+STRICT=$STRICT} OUT="$work/autograder.zip") >/dev/null
mkdir -p "$work/context/source"
(cd "$work/context/source" && python3 -m zipfile -e "$work/autograder.zip" .)
cat >"$work/context/Dockerfile" <<EOF
FROM $base
COPY source /autograder/source
RUN chmod +x /autograder/source/setup.sh /autograder/source/run_autograder && \
    cp /autograder/source/run_autograder /autograder/run_autograder && \
    cd /autograder/source && sh setup.sh
EOF
step "image build: setup.sh under Docker's default seccomp profile and capabilities"
start=$(date +%s)
docker build --network host -q -t "$image" "$work/context" >"$work/build.log" 2>&1 ||
	{ tail -30 "$work/build.log"; exit 1; }
step "setup took $(( $(date +%s) - start )) s"
versions=$(docker run --rm --network none "$image" sh -c "$probe" 2>&1 || true)
summary="Docker $(docker version -f '{{.Server.Version}}' 2>/dev/null)'s default seccomp profile, $distro minbase image, \`\`${STRICT:+STRICT=$STRICT }--cpus $cpus --memory $memory\`\`; the bundle $(du -m "$work/autograder.zip" | cut -f1) MB; setup.sh at image build $(( $(date +%s) - start )) s"

# Each submission: a folder of the student's files, and what it must score.
subs="$work/submissions"
mkdir -p "$subs"
python3 - "$kit" "$subs" <<'EOF'
import os, shutil, sys
sys.path.insert(0, os.path.join(sys.argv[1], "qemu"))
from harness import lab
kit, subs = sys.argv[1:]
def files(name, pick):
    d = os.path.join(subs, name)
    os.makedirs(d)
    for l in lab.labs():
        for f in lab.student_files(l):
            shutil.copy(pick(l, f), d)
sol = lambda l, f: os.path.join(kit, "solutions", l, f)
files("references", sol)
# The first alternative of each lab that has one.
first = lambda l: next(iter(lab.alternatives(l).values()), os.path.join(kit, "solutions", l))
files("alternatives", lambda l, f: os.path.join(first(l), f))
# Hostile in every lab: a flood, an endless read, a crash, a hang.
fix = os.path.join(kit, "qemu", "tests", "fixtures", "grade")
files("hostile", sol)
d = os.path.join(subs, "hostile")
lab.patched_solution("hello", os.path.join(fix, "printk-flood.patch"), d)
lab.patched_solution("vser", os.path.join(fix, "vser-loop-in-read.patch"), d)
def inject(path, head, line):
    text = open(path).read()
    assert head in text, (path, head)
    open(path, "w").write(text.replace(head, head + line, 1))
inject(os.path.join(d, "fsled.c"), "static int fsled_probe(struct platform_device *pdev)\n{\n",
       "\t*(volatile int *)8 = 0;\n")
inject(os.path.join(d, "edudma.c"), "static int edudma_probe(struct platform_device *pdev)\n{\n",
       "\tfor (;;)\n\t\tcpu_relax();\n")
EOF

# The container's memory in use, as the kernel charges it to its cgroup
# less the page cache it can drop (rss, mapped files, shmem), sampled each
# second while it runs: "PEAK-MB OOM-KILLS", the kills being the memory
# limit's (a QEMU killed so says nothing of why).
peak_of() {
	peak=0 kills=0
	cg=/sys/fs/cgroup/memory/docker/$(docker inspect -f '{{.Id}}' "$1")
	while docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null | grep -q true; do
		used=$(awk '$1 ~ /^total_(rss|mapped_file|shmem)$/ { n += $2 } END { print int(n / 1048576) }' \
			"$cg/memory.stat" 2>/dev/null || echo 0)
		[ "$used" -gt "$peak" ] && peak=$used
		k=$(awk '$1 == "oom_kill" { print $2 }' "$cg/memory.oom_control" 2>/dev/null || true)
		[ "${k:-0}" -gt "$kills" ] && kills=$k
		sleep 1
	done
	echo "$peak $kills"
}

failed=0
for sub in $(for _ in $(seq "$runs"); do echo references alternatives; done) hostile; do
	out="$work/results-$sub"
	rm -rf "$out"
	mkdir -p "$out"
	step "run_autograder on $sub (--network none --cpus $cpus --memory $memory)"
	start=$(date +%s)
	id=$(docker run -d --label kdkit-gs --network none --cpus "$cpus" --memory "$memory" \
		-v "$subs/$sub:/autograder/submission:ro" -v "$out:/autograder/results" "$image" \
		/autograder/run_autograder)
	read -r peak kills < <(peak_of "$id")
	docker wait "$id" >/dev/null
	secs=$(( $(date +%s) - start ))
	docker rm "$id" >/dev/null
	score=$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print("%g/%g" % (r["score"], sum(t.get("max_score", 0) for t in r.get("tests", []))))' "$out/results.json" 2>/dev/null || echo "no results.json")
	tier=$(grep -o "built in the [a-z]* sandbox" "$out/grade.log" 2>/dev/null | head -n 1 || true)
	cold=$(grep -c "booted this machine once\|booting cold" "$out/grade.log" 2>/dev/null || true)
	step "$sub: $score in $secs s, peak memory $peak MB, $kills killed for memory, ${tier:-no sandbox named}, ${cold:-0} cold boot(s)"
	summary="$summary; $sub $score in $secs s (peak $peak MB, $kills killed for memory, ${cold:-0} cold boots)"
	[ "${cold:-0}" -eq 0 ] || { failed=1; echo "$sub: run_autograder booted a VM setup.sh should have saved"; }
	[ "$kills" -eq 0 ] || { failed=1; echo "$sub: the memory limit killed a process"; }
	grep "did not restore\|could not be saved" "$out/grade.log" && { failed=1; echo "$sub: a saved VM failed"; }
	case $sub in
	references | alternatives) [ "${score%/*}" = "${score#*/}" ] || { failed=1; tail -40 "$out/grade.log"; } ;;
	hostile) ! grep -q "$(head -n 1 /etc/passwd)" "$out/results.json" || { failed=1; echo "hostile: a host file leaked"; } ;;
	esac
done
# What the CI examples (docs/examples) run, in the same container: two
# shards of the three submissions' hello, joined.
step "CI: make grade SHARD=1/2 and 2/2, then make grade-merge, LABS=hello"
csv=$(docker run --label kdkit-gs --network none --cpus "$cpus" --memory "$memory" \
	-v "$subs:/subs:ro" "$image" sh -c 'cd /autograder/source/kdkit &&
	KDKIT_CACHE=/autograder/kdkit-cache KERNEL_SRC=$(cat /autograder/kdkit-cache/kernel-src) &&
	export KDKIT_CACHE KERNEL_SRC && for i in 1 2; do
		make -s grade SUBMISSIONS=/subs LABS=hello SHARD=$i/2 OUT=/tmp/g$i >/dev/null || exit 1
	done && make -s grade-merge SHARDS="/tmp/g1 /tmp/g2" OUT=/tmp/g >/dev/null && cat /tmp/g/grades.csv' 2>&1) || true
echo "$csv"
# The merged gradebook: the references and the alternatives at hello's full
# marks, the hostile one below it, none flagged.
full=$(cd "$kit/qemu" && python3 -c 'from grader import rubric; print("%g" % sum(i.points for i in rubric.load("hello")))')
if printf '%s\n' "$csv" | python3 -c '
import csv, sys
rows = {r["student"]: r for r in csv.DictReader(sys.stdin)}
full = sys.argv[1]
ok = (set(rows) == {"alternatives", "hostile", "references"}
      and all(rows[s]["hello"] == full and not rows[s]["flagged"] for s in ("references", "alternatives"))
      and float(rows["hostile"]["hello"]) < float(full))
sys.exit(0 if ok else 1)' "$full"; then
	summary="$summary; the CI examples' sharded make grade and grade-merge in the same image: the expected grades.csv"
else
	failed=1
	summary="$summary; the CI examples' grades.csv was not the expected one"
	echo "CI: the merged grades.csv is not the expected one (references and alternatives $full, hostile less, none flagged)"
fi
step "done: $([ $failed -eq 0 ] && echo passed || echo FAILED)"
record "$([ $failed -eq 0 ] && echo passed || echo FAILED): $summary"
exit $failed
