# Included in every module build (make --eval, qemu/harness/kbuild.py): the kernel
# Makefiles' compiler flag probes (scripts/Makefile.compiler's try-run)
# are answered from a table, kdkit-probe-table, kept with the kernel build for
# each compiler. A module build makes about 40 probes, each five processes
# one after another: most of the time a build of one small file took.
#
# A probe not in the table runs as kbuild runs it. When kdkit-probe-record
# names a file, the probes that ran are added to it, as make lines that
# set a variable named after the probe (its command and both answers).

-include $(kdkit-probe-table)

kdkit-empty :=
kdkit-space := $(kdkit-empty) $(kdkit-empty)

# A probe's variable name: its text, with what a name cannot hold spelled out.
kdkit-hash := \#
kdkit-probe-text = $(subst \,~b,$(subst $$,~d,$(subst ~,~t,$(strip $(1))~a$(strip $(2))~a$(strip $(3)))))
kdkit-probe-name = kdkit-probe.$(subst $(kdkit-space),~s,$(subst =,~e,$(subst :,~c,$(subst \
	$(kdkit-hash),~h,$(kdkit-probe-text)))))

# As scripts/Makefile.compiler runs a probe.
kdkit-probe-run = $(shell set -e; TMP=$(TMPOUT)/tmp; trap "rm -rf $(TMPOUT)" EXIT; \
	mkdir -p $(TMPOUT); if ($(1)) >/dev/null 2>&1; then echo "$(2)"; else echo "$(3)"; fi)

# (name, answer): the answer, added to the record first if there is one.
kdkit-probe-keep = $(if $(kdkit-probe-record),$(file >>$(kdkit-probe-record),$(1) := \
	$(subst $$,$$$$,$(2))))$(2)

kdkit-probe-new = $(call kdkit-probe-keep,$(kdkit-probe-name),$(kdkit-probe-run))
kdkit-probe-known = $(filter-out undefined,$(origin $(kdkit-probe-name)))
override try-run = $(if $(kdkit-probe-known),$($(kdkit-probe-name)),$(kdkit-probe-new))
