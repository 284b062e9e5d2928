// SPDX-License-Identifier: GPL-2.0
/*
 * What a driver's module exit left registered. A class, a platform
 * driver, a char device region, a misc device or a claimed memory region
 * left behind keeps its name, and every later init that registers it
 * again fails (-EEXIST, -EBUSY): the failures would be blamed on init,
 * case after case. So the
 * names in those registries are read when the test module loads, before
 * any case, and again after each exit of the driver. A name that was not
 * there at first is printed on the console after KDKIT_DIRTY,
 * which tells the harness (qemu/harness/results.py) to run the cases after this
 * one in a fresh kernel; it fails only the cases that test the unload
 * (kdkit_expect_exit_left_nothing()).
 */
#include <linux/ctype.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include "kdkit.h"

#define LEFT_SIZE	SZ_16K

enum registry_kind {
	NAMES_DIR,		/* a folder's entries */
	NAMES_NUMBERED,		/* lines of "NUMBER NAME": the names */
	NAMES_LINES,		/* whole lines: "START-END : NAME" */
	NAMES_IRQS,		/* "IRQ: COUNTS... CHIP NAMES": all but the counts */
};

/* Where drivers register names. */
static const struct {
	const char *path;
	const char *what;
	enum registry_kind kind;
} registries[] = {
	{ "/sys/class", "class", NAMES_DIR },
	{ "/sys/bus/platform/drivers", "platform driver", NAMES_DIR },
	{ "/proc/devices", "char device region", NAMES_NUMBERED },
	{ "/proc/misc", "misc device", NAMES_NUMBERED },
	{ "/proc/iomem", "memory region", NAMES_LINES },
	{ "/proc/interrupts", "interrupt handler on IRQ", NAMES_IRQS },
};

struct names {
	struct dir_context ctx;
	char *buf;		/* "\n" then "WHAT NAME\n" lines */
	size_t len;
	const char *what;
};

static void names_add(struct names *n, const char *name, int len)
{
	n->len += scnprintf(n->buf + n->len, LEFT_SIZE - n->len, "%s %.*s\n", n->what, len, name);
}

static bool names_entry(struct dir_context *ctx, const char *name, int len, loff_t pos,
			u64 ino, unsigned int type)
{
	if (name[0] != '.')
		names_add(container_of(ctx, struct names, ctx), name, len);
	return true;
}

/*
 * "11:  40  3  IO-APIC  11-fasteoi  edu" as "11: edu": the handlers'
 * names, after the chip's "HWIRQ-FLOW" word. An IRQ with no handler left
 * still shows its counts and its chip, so those are not names.
 */
static void names_irq(struct names *n, char *line)
{
	char words[96], *word, *irq = strsep(&line, " \t");
	size_t len = scnprintf(words, sizeof(words), "%s", irq);
	bool flow = false;

	while ((word = strsep(&line, " \t")) != NULL) {
		if (!*word)
			continue;
		if (flow)
			len += scnprintf(words + len, sizeof(words) - len, " %s", word);
		else
			flow = word[strspn(word, "0123456789")] == '-';
	}
	if (len > strlen(irq))
		names_add(n, words, len);
}

/* The names of a /proc list: each line, or the words after its number. */
static void names_of_list(struct names *n, struct file *f, enum registry_kind kind)
{
	char *text = kvmalloc(LEFT_SIZE, GFP_KERNEL), *line, *p;
	loff_t pos = 0;
	ssize_t got, len = 0;

	if (!text)
		return;
	while (len < LEFT_SIZE - 1 &&
	       (got = kernel_read(f, text + len, LEFT_SIZE - 1 - len, &pos)) > 0)
		len += got;
	text[len] = '\0';
	for (p = text; (line = strsep(&p, "\n")) != NULL;) {
		line = skip_spaces(line);
		if (kind != NAMES_LINES && !isdigit(*line))
			continue;
		if (kind == NAMES_IRQS) {
			names_irq(n, line);
			continue;
		}
		if (kind == NAMES_NUMBERED)
			line = skip_spaces(line + strspn(line, "0123456789"));
		if (*line)
			names_add(n, line, strlen(line));
	}
	kvfree(text);
}

/* Into @buf, of LEFT_SIZE bytes: "\n", then a line "WHAT NAME" a name. */
static void names_now(char *buf)
{
	struct names n = { .ctx.actor = names_entry, .buf = buf };
	unsigned int i;

	n.len = scnprintf(n.buf, LEFT_SIZE, "\n");
	for (i = 0; i < ARRAY_SIZE(registries); i++) {
		enum registry_kind kind = registries[i].kind;
		struct file *f = filp_open(registries[i].path,
					   O_RDONLY | (kind == NAMES_DIR ? O_DIRECTORY : 0), 0);

		if (IS_ERR(f))
			continue;
		n.what = registries[i].what;
		if (kind == NAMES_DIR)
			iterate_dir(f, &n.ctx);
		else
			names_of_list(&n, f, kind);
		filp_close(f, NULL);
	}
	/* A kthread's last fput() waits: the leak accounting would see it. */
	flush_delayed_fput();
}

static char before[LEFT_SIZE];	/* the names when the test module loaded */
static char left[256];		/* what the last exit left, "" if nothing */

void kdkit_left_baseline(void)
{
	names_now(before);
}

void kdkit_left_check(void)
{
	char *after = kvmalloc(LEFT_SIZE, GFP_KERNEL), *line, *end;
	char want[128];
	size_t len = 0;

	left[0] = '\0';
	if (!after)
		return;
	names_now(after);
	for (line = after + 1; *(end = strchrnul(line, '\n')); line = end + 1) {
		if (end - line + 3 > sizeof(want))
			continue;
		snprintf(want, sizeof(want), "\n%.*s\n", (int)(end - line), line);
		if (strstr(before, want))
			continue;
		pr_err(KDKIT_DIRTY " module exit left %.*s registered\n", (int)(end - line), line);
		len += scnprintf(left + len, sizeof(left) - len, "%s%.*s", len ? ", " : "",
				 (int)(end - line), line);
	}
	kvfree(after);
}

void kdkit_expect_exit_left_nothing(struct kunit *test)
{
	/* Every later init that registers the name again fails. */
	KUNIT_EXPECT_TRUE_MSG(test, !left[0], "module exit left %s registered", left);
}
EXPORT_SYMBOL_GPL(kdkit_expect_exit_left_nothing);
