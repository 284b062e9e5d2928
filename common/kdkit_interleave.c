// SPDX-License-Identifier: GPL-2.0
/*
 * Races found by construction, not by chance. Two threads call into the
 * driver at once; the first is stopped at one instruction of a driver
 * function, the second runs while it waits, then the first goes on. One
 * round for each instruction the first thread reaches: a check-then-act
 * without a lock, or a lock dropped too early, is then caught in the
 * round that stops between the two, every time.
 *
 * Every instruction of the function gets a kprobe, registered once. A
 * first round runs the threads one after the other and notes which
 * instructions the first reaches; each later round stops it at one of
 * them. The kprobe handler runs like an NMI, with interrupts off, so it
 * can neither sleep nor wake anyone, and jiffies (this VM's clock: TCG's
 * TSC is unstable) may stand still while it waits. It waits, counting TSC
 * cycles, until the second thread has finished, or sleeps (blocked on a
 * lock the first holds), or ROUND_WAIT_MS pass (spinning on one). The
 * second thread polls for its start. The threads are bound to CPUs 0 and 1.
 */
#include <linux/completion.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/kthread.h>
#include <linux/sched/mm.h>
#include <asm/tsc.h>
#include "kdkit.h"

#define ROUND_WAIT_MS	5

struct round {
	const struct kdkit_interleave *il;
	void *stop_at;			/* NULL: run one after the other */
	unsigned long *reached;		/* the offsets the first thread reached */
	struct task_struct *first, *second;
	struct completion start[2], done[2];
	bool stopped, first_finished, second_started, second_finished, quit;
};

/* One round at a time: the kprobe handler finds its round here. */
static struct round *current_round;

static bool second_waits(struct round *r)
{
	struct task_struct *t = r->second;

	return READ_ONCE(r->second_started) && READ_ONCE(t->__state) != TASK_RUNNING &&
	       !READ_ONCE(t->on_cpu);
}

static int stop_first(struct kprobe *p, struct pt_regs *regs)
{
	struct round *r = READ_ONCE(current_round);
	u64 start = get_cycles();

	if (!r || current != r->first || r->stopped)
		return 0;
	if (!r->stop_at) {
		__set_bit(p->addr - (kprobe_opcode_t *)r->il->fn, r->reached);
		return 0;
	}
	if (p->addr != r->stop_at)
		return 0;
	WRITE_ONCE(r->stopped, true);
	while (!READ_ONCE(r->second_finished) && !second_waits(r) &&
	       get_cycles() - start < (u64)tsc_khz * ROUND_WAIT_MS)
		cpu_relax();
	return 0;
}

/* The two threads live for all rounds: creating them per round costs more. */
static int run_first(void *data)
{
	struct round *r = data;

	if (r->il->mm)
		kthread_use_mm(r->il->mm);
	for (;;) {
		wait_for_completion(&r->start[0]);
		if (r->quit)
			break;
		r->il->first(r->il->data);
		/* Never stopped there (not reached), the second starts now. */
		WRITE_ONCE(r->first_finished, true);
		complete(&r->done[0]);
	}
	if (r->il->mm)
		kthread_unuse_mm(r->il->mm);
	return 0;
}

static int run_second(void *data)
{
	struct round *r = data;

	if (r->il->mm)
		kthread_use_mm(r->il->mm);
	for (;;) {
		wait_for_completion(&r->start[1]);
		if (r->quit)
			break;
		while (!READ_ONCE(r->stopped) && !READ_ONCE(r->first_finished))
			cond_resched();
		WRITE_ONCE(r->second_started, true);
		r->il->second(r->il->data);
		WRITE_ONCE(r->second_finished, true);
		complete(&r->done[1]);
	}
	if (r->il->mm)
		kthread_unuse_mm(r->il->mm);
	return 0;
}

/* The size of the function at @fn, from kallsyms ("name+0x0/0x5f [mod]"). */
static unsigned long function_size(void *fn)
{
	char sym[KSYM_SYMBOL_LEN], *slash;
	unsigned long size;

	sprint_symbol(sym, (unsigned long)fn);
	slash = strchr(sym, '/');
	if (!slash)
		return 0;
	*strchrnul(slash, ' ') = '\0';
	return kstrtoul(slash + 1, 16, &size) ? 0 : size;
}

static struct task_struct *thread_on(int (*fn)(void *), struct round *r, unsigned int cpu,
				     const char *name)
{
	struct task_struct *t = kthread_create(fn, r, "kdkit-%s", name);

	if (IS_ERR(t))
		return NULL;
	kthread_bind(t, cpu);
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

void kdkit_interleave(struct kunit *test, const struct kdkit_interleave *il)
{
	unsigned long size = function_size(il->fn), off, step;
	struct round r = { .il = il };
	struct kprobe *kp, **armed;
	unsigned int n = 0;
	bool go_on;

	KUNIT_ASSERT_GT_MSG(test, size, 0UL, "no size for %ps in kallsyms", il->fn);
	if (num_online_cpus() < 2)
		kunit_skip(test, "needs two CPUs");
	kp = kunit_kcalloc(test, size, sizeof(*kp), GFP_KERNEL);
	armed = kunit_kcalloc(test, size, sizeof(*armed), GFP_KERNEL);
	r.reached = kunit_kcalloc(test, BITS_TO_LONGS(size), sizeof(long), GFP_KERNEL);
	KUNIT_ASSERT_TRUE(test, kp && armed && r.reached);
	for (off = 0; off < 2; off++) {
		init_completion(&r.start[off]);
		init_completion(&r.done[off]);
	}
	r.first = thread_on(run_first, &r, 0, "first");
	r.second = thread_on(run_second, &r, 1, "second");
	if (!r.first || !r.second) {
		threads_end(&r);
		KUNIT_ASSERT_FAILURE(test, "cannot start two threads");
	}
	for (off = 0; off < size; off += step) {
		kp[off].addr = il->fn + off;
		kp[off].pre_handler = stop_first;
		step = 1;
		/* Refused where kprobes may not go: try the next byte. */
		if (register_kprobe(&kp[off]))
			continue;
		armed[n++] = &kp[off];
		/* The next instruction: each refused try costs a blacklist walk. */
		step = kp[off].ainsn.size ?: 1;
	}

	run_round(&r);
	go_on = il->check(test, il->data, NULL);
	for_each_set_bit(off, r.reached, size) {
		if (!go_on)
			break;
		r.stop_at = il->fn + off;
		run_round(&r);
		go_on = il->check(test, il->data, r.stopped ? r.stop_at : NULL);
	}
	if (n)
		unregister_kprobes(armed, n);
	threads_end(&r);
	KUNIT_EXPECT_GT_MSG(test, bitmap_weight(r.reached, size), 0U,
			    "the first thread never ran an instruction of %ps", il->fn);
}
EXPORT_SYMBOL_GPL(kdkit_interleave);
