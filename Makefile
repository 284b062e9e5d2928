# kdkit: Linux driver labs, tested with KUnit on a real kernel in QEMU.
# Run `make help` for the targets. Settings below can be overridden, e.g.
# `make test LAB=vser SRC=~/my-vser STRICT=1`.

LAB ?=
SRC ?= labs
STRICT ?=
AUDIENCE ?= student
PYTHON ?= /usr/bin/python3

kdkit = $(PYTHON) qemu/kdkit.py
# The kit's other entry points run as modules, with qemu/ on the path.
module = PYTHONPATH="$(CURDIR)/qemu" $(PYTHON) -m
# STRICT=1 (any value but 0) for the strict kernel; STRICT=0 is fast.
strict_on = $(filter-out 0,$(STRICT))
flavour = $(if $(strict_on),strict,fast)
strict_flag = $(if $(strict_on),--strict)
# Grading uses the strict kernel (KASAN, lockdep) unless STRICT=0.
grade_flavour = $(if $(filter 0,$(STRICT)),fast,strict)

.PHONY: help setup packages kernel test shell panel grade grade-merge gradescope bench timings bench-grade skels docs distro-check check compile_commands.json debug gdb watch

help: ## list the targets
	@echo "usage: make TARGET [LAB=$(subst $(eval) ,|,$(notdir $(wildcard solutions/*)))] [SRC=labs|solutions|DIR] [STRICT=1]"
	@awk -F':.*## ' '/^[a-z_.-]+:.*## / { printf "  %-13s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

packages: ## install what the kit needs and lacks (apt-get or dnf, as root or via sudo)
	@PYTHON="$(PYTHON)" bash qemu/deps.sh build run

kernel: packages ## build the kit kernel of this flavour, if not cached
	@bash qemu/kernel/build.sh $(flavour)

setup: packages ## install packages, build both kernel flavours (fast, strict)
	@bash qemu/kernel/build.sh fast
	@bash qemu/kernel/build.sh strict

test: kernel ## build LAB from SRC, boot, run its KUnit suites [CASE=suite, case or suite.case, globs allowed]
	@$(kdkit) test "$(LAB)" --src "$(SRC)" $(strict_flag) --case "$(CASE)"

watch: kernel ## test LAB on every save of its files, the cases that failed last first (Ctrl-C to stop)
	@bash qemu/deps.sh watch
	@$(kdkit) watch "$(LAB)" --src "$(SRC)" $(strict_flag)

shell: kernel ## a VM with LAB's module loaded [PARAMS="ndevs=4 ..."] (leave: reboot -f, or Ctrl-a x)
	@$(kdkit) shell "$(LAB)" --src "$(SRC)" $(strict_flag) --params "$(PARAMS)"

debug: kernel ## make shell with QEMU's gdb stub; then 'make gdb' in a second terminal: break vser_read, next, print, bt
	@bash qemu/deps.sh debug
	@$(kdkit) debug "$(LAB)" --src "$(SRC)" $(strict_flag) --params "$(PARAMS)"

gdb: ## gdb on the running 'make debug LAB=...', with the kernel's and your module's symbols
	@$(kdkit) gdb "$(LAB)"

panel: ## the LEDs of a running 'make shell LAB=fsled', in a second terminal
	@$(kdkit) panel "$(or $(LAB),fsled)"

# A built kernel (a cache, or a packed one) needs only the modules' tools.
grade: ## grade SUBMISSION=DIR or SUBMISSIONS=DIR (default labs/) [LABS=a,b] [JOBS=N] [PRIVATE=DIR] [STRICT=0: on the fast kernel] [SHARD=i/N: a share, for CI]
	@if bash qemu/kernel/build.sh --built $(grade_flavour); then tools=modules; else tools=build; fi; \
		PYTHON="$(PYTHON)" bash qemu/deps.sh $$tools run grade
	@bash qemu/kernel/build.sh $(grade_flavour)
	@$(if $(PRIVATE),KDKIT_PRIVATE="$(abspath $(PRIVATE))") $(module) grader.grade \
		$(if $(SUBMISSION),--submission "$(SUBMISSION)") \
		$(if $(SUBMISSIONS),--submissions "$(SUBMISSIONS)") --labs "$(LABS)" \
		$(if $(JOBS),--jobs "$(JOBS)") $(if $(filter strict,$(grade_flavour)),--strict) \
		$(if $(SHARD),--shard "$(SHARD)") --out "$(or $(OUT),grades)"

grade-merge: ## join sharded grades: SHARDS="grades-1 grades-2 ..." into OUT (default grades)
	@$(module) grader.merge --out "$(or $(OUT),grades)" $(SHARDS)

gradescope: ## the Gradescope autograder bundle [LABS=a,b] [PRIVATE=DIR] [STRICT=0: grade on fast] [PACK=1: with the built kernel] [OUT=zip]
	@$(if $(PACK),bash qemu/kernel/build.sh $(grade_flavour))
	@$(module) grader.bundle --labs "$(LABS)" $(if $(PRIVATE),--private "$(abspath $(PRIVATE))") \
		$(if $(filter strict,$(grade_flavour)),--strict) $(if $(PACK),--pack) $(if $(OUT),--out "$(OUT)")

bench: kernel ## time edit-to-result for LAB (default hello) [STRICT=1]: build, restore or boot, tests
	@$(kdkit) bench "$(or $(LAB),hello)" --src "$(SRC)" $(strict_flag)

timings: kernel ## measure bench (3 runs) and a strict test per lab into docs/timings.inc, the only home of the kit's timings
	@$(module) selfcheck.timings

bench-grade: kernel ## grading throughput on 20 generated submissions, JOBS=1 and 2 (or JOBS=N) [STRICT=1]
	@$(module) selfcheck.grade_bench $(strict_flag) $(if $(JOBS),--jobs "$(JOBS)")

compile_commands.json: kernel ## for clangd (VS Code, vim, Emacs): the labs' compile flags, kernel headers included
	@$(module) course.compile_commands

skels: ## regenerate labs/ from solutions/
	@$(module) course.skelgen solutions labs

docs: ## the course in docs/_build/html [AUDIENCE=instructor: with solutions]
	@PYTHON="$(PYTHON)" bash qemu/deps.sh docs
	@$(module) course.docs --audience "$(AUDIENCE)"

distro-check: ## the README's commands in a fresh minbase chroot, as root: DISTRO=bookworm|trixie [MODE=test|gradescope|gradescope-docker|container]
	@bash qemu/selfcheck/distro-check.sh "$(DISTRO)" "$(or $(MODE),test)"

check: setup ## the kit's own tests; ends with "N passed, N failed, N skipped"
	@PYTHON="$(PYTHON)" bash qemu/deps.sh grade check docs
	@$(module) selfcheck.check
