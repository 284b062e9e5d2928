// SPDX-License-Identifier: GPL-2.0
/*
 * Races found by construction, not by chance. Two threads call into the
 * driver at once; the first is stopped at one instruction of a driver
 * function, the second runs while it waits, then the first goes on. One
 * round for each instruction the first thread reaches: a check-then-act
 * without a lock, or a lock dropped too early, is then caught in the
 * round that stops between the two, every time.
 *
 * Every instruction of the function, and of the driver's functions it
 * calls (a helper that does the read-modify-write), gets a kprobe,
 * registered once. A first round runs the threads one after the other and
 * notes which instructions the first reaches; each later round stops it
 * at one of them. The kprobe handler runs like an NMI, with interrupts off, so it
 * can neither sleep nor wake anyone. It waits until the second thread has
 * finished, or sleeps (blocked on a lock the first holds). Elapsed time
 * and even the guest's CPU time say nothing about the second thread's
 * progress: on a busy host its vCPU may not run for a while. So the first
 * is never stopped where the second could only spin on it: where it holds
 * a spinlock, or has preemption or interrupts off (noted in the first
 * round); and while it waits it shows as off its CPU, so that a mutex it
 * holds makes the second sleep rather than spin. ROUND_LIMIT_SPINS is
 * only a guard against a second thread that spins on something else,
 * counted in turns of the wait, for no clock can be read here: jiffies
 * stand still with interrupts off, and this VM has no calibrated TSC.
 * The second thread polls for its start. The threads are bound to CPUs 0
 * and 1.
 */
#include <linux/completion.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/kthread.h>
#include <linux/sched/mm.h>
#include <asm/unaligned.h>
#include "kdkit.h"

#define ROUND_LIMIT_SPINS	(5 * 1000 * 1000)	/* about 0.8 s here */

/* The driver's functions a call may lead to, @fn first. */
#define MAX_FUNCTIONS	16
/* Where @after's functions return to the driver. */
#define MAX_SITES	32

struct round {
	const struct kdkit_interleave *il;
	void *stop_at;			/* NULL: run one after the other */
	struct kprobe *kp;		/* one per byte of the functions */
	unsigned long *reached;		/* the kprobes the first thread reached */
	unsigned long *atomic;		/* ... with a spinlock or preemption off */
	int depth;			/* preemption depth at its first instruction */
	unsigned long sites[MAX_SITES];
	unsigned int nr_sites;
	struct task_struct *first, *second;
	struct side {
		struct round *round;
		unsigned int index;	/* 0: the first thread, 1: the second */
	} side[2];
	struct completion start[2], done[2];
	bool stopped, first_finished, second_started, second_finished, quit;
};

/* One round at a time: the kprobe handler finds its round here. */
static struct round *current_round;

/* Has the second thread finished, or gone to sleep? */
static bool second_done_or_asleep(struct round *r)
{
	struct task_struct *t = r->second;

	return READ_ONCE(r->second_finished) ||
	       (READ_ONCE(r->second_started) && READ_ONCE(t->__state) != TASK_RUNNING &&
		!READ_ONCE(t->on_cpu));
}

/* The first thread waits here while the second runs. */
static void hold_first(struct round *r)
{
	unsigned long spins = 0;

	WRITE_ONCE(r->stopped, true);
	/*
	 * A mutex's waiter spins while the owner is on a CPU: show this
	 * thread as off its CPU meanwhile. Preemption is off, so the
	 * scheduler itself never sees it.
	 */
	WRITE_ONCE(current->on_cpu, 0);
	while (!second_done_or_asleep(r) && ++spins < ROUND_LIMIT_SPINS)
		cpu_relax();
	WRITE_ONCE(current->on_cpu, 1);
}

static int stop_first(struct kprobe *p, struct pt_regs *regs)
{
	struct round *r = READ_ONCE(current_round);

	if (!r || current != r->first || r->stopped)
		return 0;
	if (!r->stop_at) {
		unsigned long off = p - r->kp;
		int depth = preempt_count() & PREEMPT_MASK;

		if (r->depth < 0)
			r->depth = depth;
		__set_bit(off, r->reached);
		if (depth > r->depth || !(regs->flags & X86_EFLAGS_IF))
			__set_bit(off, r->atomic);
		return 0;
	}
	if (p->addr == r->stop_at)
		hold_first(r);
	return 0;
}

/*
 * With @after: one of those functions returns to the driver. The entry
 * notes where it returns to; only the first thread's calls from the
 * driver count.
 */
static int after_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct round *r = READ_ONCE(current_round);
	unsigned long caller = regs_get_kernel_stack_nth(regs, 0);
	struct module *mod = kdkit_driver_module();

	if (!r || current != r->first || !mod || !within_module(caller, mod))
		return 1;
	*(unsigned long *)ri->data = caller;
	return 0;
}

static int after_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct round *r = READ_ONCE(current_round);
	unsigned long caller = *(unsigned long *)ri->data;
	unsigned int i;

	if (!r || r->stopped)
		return 0;
	if (!r->stop_at) {
		for (i = 0; i < r->nr_sites && r->sites[i] != caller; i++)
			;
		if (i == r->nr_sites && i < MAX_SITES)
			r->sites[r->nr_sites++] = caller;
		return 0;
	}
	if ((void *)caller == r->stop_at)
		hold_first(r);
	return 0;
}

/*
 * The two threads live for all rounds (creating them per round costs
 * more); each waits for a round's start, runs its side, and says so.
 */
static int run_side(void *data)
{
	struct round *r = ((struct side *)data)->round;
	unsigned int i = ((struct side *)data)->index;

	if (r->il->mm)
		kthread_use_mm(r->il->mm);
	for (;;) {
		wait_for_completion(&r->start[i]);
		if (r->quit)
			break;
		if (i == 0) {
			r->il->first(r->il->data);
			/* Never stopped there (not reached), the second starts now. */
			WRITE_ONCE(r->first_finished, true);
		} else {
			while (!READ_ONCE(r->stopped) && !READ_ONCE(r->first_finished))
				cond_resched();
			WRITE_ONCE(r->second_started, true);
			r->il->second(r->il->data);
			WRITE_ONCE(r->second_finished, true);
		}
		complete(&r->done[i]);
	}
	if (r->il->mm)
		kthread_unuse_mm(r->il->mm);
	return 0;
}

/*
 * The size of the function that starts at @fn, from kallsyms
 * ("name+0x0/0x5f [mod]"); 0 if no function starts there.
 */
static unsigned long function_size(void *fn)
{
	char sym[KSYM_SYMBOL_LEN], *slash;
	unsigned long size;

	sprint_symbol(sym, (unsigned long)fn);
	slash = strchr(sym, '/');
	if (!slash || slash - sym < 4 || strncmp(slash - 4, "+0x0", 4))
		return 0;
	*strchrnul(slash, ' ') = '\0';
	return kstrtoul(slash + 1, 16, &size) ? 0 : size;
}

struct functions {
	void *start[MAX_FUNCTIONS];
	unsigned long size[MAX_FUNCTIONS];
	unsigned int nr;
	unsigned long total;
};

/*
 * @fn, and the driver's functions it calls directly, and those they call:
 * a "call rel32" (0xe8) whose target starts a function of the module. A
 * byte that only looks like one adds a function at worst, never a wrong
 * stop: each stop is a kprobe on a decoded instruction.
 */
static void functions_of(struct functions *f, void *fn)
{
	struct module *mod = kdkit_driver_module();
	unsigned int i, k;
	unsigned long off;

	f->start[0] = fn;
	f->size[0] = function_size(fn);
	f->total = f->size[0];
	f->nr = f->size[0] ? 1 : 0;
	for (i = 0; i < f->nr; i++) {
		for (off = 0; off + 5 <= f->size[i] && f->nr < MAX_FUNCTIONS; off++) {
			u8 *insn = f->start[i] + off;
			void *target = insn + 5 + get_unaligned((s32 *)(insn + 1));
			unsigned long size;

			if (*insn != 0xe8 || !mod || !within_module((unsigned long)target, mod))
				continue;
			for (k = 0; k < f->nr && f->start[k] != target; k++)
				;
			size = k < f->nr ? 0 : function_size(target);
			if (!size)
				continue;
			f->start[f->nr] = target;
			f->size[f->nr++] = size;
			f->total += size;
		}
	}
}

/* Side @i's thread, on CPU @i. */
static struct task_struct *thread_on(struct round *r, unsigned int i)
{
	struct task_struct *t;

	r->side[i] = (struct side){ .round = r, .index = i };
	t = kthread_create(run_side, &r->side[i], "kdkit-%s", i ? "second" : "first");
	if (IS_ERR(t))
		return NULL;
	kthread_bind(t, i);
	get_task_struct(t);
	wake_up_process(t);
	return t;
}

static void threads_end(struct round *r)
{
	unsigned int i;

	r->quit = true;
	for (i = 0; i < 2; i++)
		complete(&r->start[i]);
	for (i = 0; i < 2; i++) {
		struct task_struct *t = i ? r->second : r->first;

		if (t) {
			kthread_stop(t);
			put_task_struct(t);
		}
	}
}

/* One round: the first thread stopped at @r->stop_at, if it gets there. */
static void run_round(struct round *r)
{
	unsigned int i;

	r->stopped = false;
	r->first_finished = false;
	r->second_started = false;
	r->second_finished = false;
	WRITE_ONCE(current_round, r);
	for (i = 0; i < 2; i++)
		complete(&r->start[i]);
	for (i = 0; i < 2; i++)
		wait_for_completion(&r->done[i]);
	WRITE_ONCE(current_round, NULL);
}

static void start_threads(struct kunit *test, struct round *r)
{
	unsigned int i;

	for (i = 0; i < 2; i++) {
		init_completion(&r->start[i]);
		init_completion(&r->done[i]);
	}
	r->first = thread_on(r, 0);
	r->second = thread_on(r, 1);
	if (!r->first || !r->second) {
		threads_end(r);
		KUNIT_ASSERT_FAILURE(test, "cannot start two threads");
	}
}

/* One round stopped at @at (NULL: one thread after the other); go on? */
static bool round_at(struct kunit *test, struct round *r, void *at)
{
	r->stop_at = at;
	run_round(r);
	return r->il->check(test, r->il->data, r->stopped ? r->stop_at : NULL);
}

/*
 * Stop the first thread where one of @il->after's functions returns to
 * the driver: kretprobes, since the driver's init text takes no kprobe
 * once the module is live.
 */
static void interleave_after(struct kunit *test, const struct kdkit_interleave *il)
{
	struct round r = { .il = il, .depth = -1 };
	struct kretprobe *rp, **armed;
	unsigned int n, i, armed_nr = 0;
	bool go_on;

	for (n = 0; il->after[n]; n++)
		;
	rp = kunit_kcalloc(test, n, sizeof(*rp), GFP_KERNEL);
	armed = kunit_kcalloc(test, n, sizeof(*armed), GFP_KERNEL);
	KUNIT_ASSERT_TRUE(test, rp && armed);
	start_threads(test, &r);
	for (i = 0; i < n; i++) {
		rp[i].kp.addr = il->after[i];
		rp[i].entry_handler = after_entry;
		rp[i].handler = after_return;
		rp[i].data_size = sizeof(unsigned long);
		rp[i].maxactive = 4;
		if (!register_kretprobe(&rp[i]))
			armed[armed_nr++] = &rp[i];
	}
	go_on = round_at(test, &r, NULL);
	for (i = 0; i < r.nr_sites && go_on; i++)
		go_on = round_at(test, &r, (void *)r.sites[i]);
	if (armed_nr)
		unregister_kretprobes(armed, armed_nr);
	threads_end(&r);
	KUNIT_EXPECT_GT_MSG(test, r.nr_sites, 0U,
			    "the driver called none of the functions watched (%ps, ...)",
			    il->after[0]);
}

void kdkit_interleave(struct kunit *test, const struct kdkit_interleave *il)
{
	struct round r = { .il = il, .depth = -1 };
	unsigned long size, base, off, step;
	struct kprobe *kp, **armed;
	unsigned int n = 0, reached, i;
	struct functions *f;
	bool go_on;

	if (num_online_cpus() < 2)
		kunit_skip(test, "needs two CPUs");
	if (il->after) {
		interleave_after(test, il);
		return;
	}
	f = kunit_kzalloc(test, sizeof(*f), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, f);
	functions_of(f, il->fn);
	size = f->total;
	KUNIT_ASSERT_GT_MSG(test, size, 0UL, "no size for %ps in kallsyms", il->fn);
	kp = kunit_kcalloc(test, size, sizeof(*kp), GFP_KERNEL);
	armed = kunit_kcalloc(test, size, sizeof(*armed), GFP_KERNEL);
	r.reached = kunit_kcalloc(test, BITS_TO_LONGS(size), sizeof(long), GFP_KERNEL);
	r.atomic = kunit_kcalloc(test, BITS_TO_LONGS(size), sizeof(long), GFP_KERNEL);
	KUNIT_ASSERT_TRUE(test, kp && armed && r.reached && r.atomic);
	r.kp = kp;
	start_threads(test, &r);
	for (i = 0, base = 0; i < f->nr; base += f->size[i++]) {
		for (off = 0; off < f->size[i]; off += step) {
			struct kprobe *p = &kp[base + off];

			p->addr = f->start[i] + off;
			p->pre_handler = stop_first;
			step = 1;
			/* Refused where kprobes may not go: try the next byte. */
			if (register_kprobe(p))
				continue;
			armed[n++] = p;
			/* The next instruction: each refused try costs a blacklist walk. */
			step = p->ainsn.size ?: 1;
		}
	}

	go_on = round_at(test, &r, NULL);
	reached = bitmap_weight(r.reached, size);
	/* Stopped there, the first would hold up the second's CPU or spinlock. */
	bitmap_andnot(r.reached, r.reached, r.atomic, size);
	for_each_set_bit(off, r.reached, size) {
		if (!go_on)
			break;
		go_on = round_at(test, &r, kp[off].addr);
	}
	if (n)
		unregister_kprobes(armed, n);
	threads_end(&r);
	KUNIT_EXPECT_GT_MSG(test, reached, 0U,
			    "the first thread never ran an instruction of %ps", il->fn);
}
EXPORT_SYMBOL_GPL(kdkit_interleave);
