// SPDX-License-Identifier: GPL-2.0
/*
 * Exact allocation accounting for one task, for the error-path sweeps.
 *
 * While a window is open, every slab or vmalloc allocation made by the
 * watched task is recorded with the call stack that made it, and every free
 * of a recorded object, by any task, forgets it. Whatever is still recorded
 * when the window closes was never freed. That covers plain leaks, and also
 * registrations left behind (a chrdev region, a cdev, a class, a device, an
 * ioremap), since each of those owns an allocation until it is undone.
 * IRQs are counted the same way: a request_irq() not freed is left over,
 * and a free_irq() of an IRQ the task never requested is reported too.
 *
 * kmemleak would need objects 5 s old and misses a leak that a stale global
 * still points to; this needs neither.
 */
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/stacktrace.h>
#include <linux/vmalloc.h>
#include <linux/xarray.h>
#include "kdkit.h"

#define LEAK_MAX_RECORDS	1024

struct leak_record {
	const void *ptr;	/* the object, or the dev_id of an IRQ */
	int irq;		/* -1 for memory */
	struct kdkit_site site;
};

/*
 * Kprobe handlers run in int3 context, which lockdep treats as NMI, so the
 * records take an arch spinlock, outside lockdep. No section under it calls
 * a probed function, and each runs with interrupts off, so no handler can
 * wait for it on its own CPU.
 */
static arch_spinlock_t leak_lock = __ARCH_SPIN_LOCK_UNLOCKED;
static struct task_struct *watched;	/* NULL while no window is open */
static struct leak_record *records;
static unsigned int nr_records;
static bool overflowed;
static int depth;			/* the watched task's allocators in progress */
static struct kdkit_site failed_site;	/* the last allocation that failed */
static bool has_failed;
static int bogus_frees;			/* free_irq() of what was never requested */
static struct kdkit_site bogus_site;

/* Save the call stack at probed function @fn, without the kprobe machinery. */
static void site_save(struct kdkit_site *site, const void *fn)
{
	unsigned int i;

	site->nr = stack_trace_save(site->entries, ARRAY_SIZE(site->entries), 0);
	for (i = 0; i < site->nr; i++) {
		if (site->entries[i] - (unsigned long)fn < 16) {
			site->nr -= i;
			memmove(site->entries, site->entries + i,
				site->nr * sizeof(site->entries[0]));
			return;
		}
	}
}

static int alloc_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	/*
	 * Not ours, or nested in an allocator already counted (kmemleak's
	 * metadata, kvmalloc's kmalloc): skip the return handler.
	 */
	if (READ_ONCE(watched) != current || depth)
		return 1;
	depth++;
	site_save((struct kdkit_site *)ri->data, get_kretprobe(ri)->kp.addr);
	return 0;
}

static void remember(const void *ptr, int irq, const struct kdkit_site *site)
{
	unsigned long flags;

	local_irq_save(flags);
	arch_spin_lock(&leak_lock);
	if (nr_records < LEAK_MAX_RECORDS) {
		records[nr_records].ptr = ptr;
		records[nr_records].irq = irq;
		records[nr_records].site = *site;
		nr_records++;
	} else {
		overflowed = true;
	}
	arch_spin_unlock(&leak_lock);
	local_irq_restore(flags);
}

static bool forget(const void *ptr, int irq)
{
	unsigned long flags;
	unsigned int i;
	bool found = false;

	if (!READ_ONCE(records))
		return false;
	local_irq_save(flags);
	arch_spin_lock(&leak_lock);
	for (i = 0; i < nr_records; i++) {
		if (records[i].ptr == ptr && records[i].irq == irq) {
			records[i] = records[--nr_records];
			found = true;
			break;
		}
	}
	arch_spin_unlock(&leak_lock);
	local_irq_restore(flags);
	return found;
}

static int alloc_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	const void *ptr = (const void *)regs_return_value(regs);

	depth--;
	if (!ZERO_OR_NULL_PTR(ptr)) {
		remember(ptr, -1, (struct kdkit_site *)ri->data);
	} else if (!ptr) {
		failed_site = *(struct kdkit_site *)ri->data;
		has_failed = true;
	}
	return 0;
}

static void forget_object(const void *ptr)
{
	if (!ZERO_OR_NULL_PTR(ptr))
		forget(ptr, -1);
}

/* kfree(ptr), vfree(ptr): the object is the first argument. */
static int free_arg1(struct kprobe *p, struct pt_regs *regs)
{
	forget_object((const void *)regs_get_kernel_argument(regs, 0));
	return 0;
}

/* kmem_cache_free(cache, ptr): the object is the second argument. */
static int free_arg2(struct kprobe *p, struct pt_regs *regs)
{
	forget_object((const void *)regs_get_kernel_argument(regs, 1));
	return 0;
}

/* kmem_cache_free_bulk(cache, n, ptrs): kfree_rcu() frees this way. */
static int free_bulk(struct kprobe *p, struct pt_regs *regs)
{
	size_t i, n = regs_get_kernel_argument(regs, 1);
	void **ptrs = (void **)regs_get_kernel_argument(regs, 2);

	for (i = 0; i < n; i++)
		forget_object(ptrs[i]);
	return 0;
}

/* request_threaded_irq(irq, handler, thread_fn, flags, name, dev_id) */
struct irq_request {
	struct kdkit_site site;
	int irq;
	void *dev_id;
};

static int irq_request_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct irq_request *req = (struct irq_request *)ri->data;

	if (READ_ONCE(watched) != current)
		return 1;
	req->irq = regs_get_kernel_argument(regs, 0);
	req->dev_id = (void *)regs_get_kernel_argument(regs, 5);
	site_save(&req->site, get_kretprobe(ri)->kp.addr);
	return 0;
}

static int irq_request_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct irq_request *req = (struct irq_request *)ri->data;

	if (!regs_return_value(regs))
		remember(req->dev_id, req->irq, &req->site);
	return 0;
}

/* free_irq(irq, dev_id) */
static int irq_free(struct kprobe *p, struct pt_regs *regs)
{
	int irq = regs_get_kernel_argument(regs, 0);
	void *dev_id = (void *)regs_get_kernel_argument(regs, 1);

	if (forget(dev_id, irq) || READ_ONCE(watched) != current)
		return 0;
	if (!bogus_frees++)
		site_save(&bogus_site, p->addr);
	return 0;
}

#define ALLOC_PROBE(fn) { \
	.kp.symbol_name = #fn, .entry_handler = alloc_entry, \
	.handler = alloc_return, .data_size = sizeof(struct kdkit_site), \
	.maxactive = 8, }

/* Every allocator that hands memory to its caller; nested ones are fine. */
static struct kretprobe alloc_probes[] = {
	ALLOC_PROBE(__kmalloc),
	ALLOC_PROBE(__kmalloc_node),
	ALLOC_PROBE(__kmalloc_node_track_caller),
	ALLOC_PROBE(kmalloc_trace),
	ALLOC_PROBE(kmalloc_node_trace),
	ALLOC_PROBE(kmalloc_large),
	ALLOC_PROBE(kmalloc_large_node),
	ALLOC_PROBE(kmem_cache_alloc),
	ALLOC_PROBE(kmem_cache_alloc_lru),
	ALLOC_PROBE(kmem_cache_alloc_node),
	ALLOC_PROBE(__vmalloc_node_range),
	{ .kp.symbol_name = "request_threaded_irq", .entry_handler = irq_request_entry,
	  .handler = irq_request_return, .data_size = sizeof(struct irq_request),
	  .maxactive = 4, },
};

/*
 * call_rcu(head, func): a radix tree node (idr, ida) is queued to be freed
 * after a grace period. It counts as freed when queued, so that closing a
 * window need not wait for a grace period, which costs milliseconds.
 */
static rcu_callback_t radix_node_free;

static int rcu_queue(struct kprobe *p, struct pt_regs *regs)
{
	struct rcu_head *head = (struct rcu_head *)regs_get_kernel_argument(regs, 0);

	if (READ_ONCE(nr_records) &&
	    (rcu_callback_t)regs_get_kernel_argument(regs, 1) == radix_node_free)
		forget_object(container_of(head, struct xa_node, rcu_head));
	return 0;
}

static struct kprobe free_probes[] = {
	{ .symbol_name = "kfree", .pre_handler = free_arg1 },
	{ .symbol_name = "vfree", .pre_handler = free_arg1 },
	{ .symbol_name = "kmem_cache_free", .pre_handler = free_arg2 },
	{ .symbol_name = "kmem_cache_free_bulk", .pre_handler = free_bulk },
	{ .symbol_name = "free_irq", .pre_handler = irq_free },
	{ .symbol_name = "call_rcu", .pre_handler = rcu_queue },
};

/* The address of a function the kernel does not export, via a kprobe. */
static void *kdkit_symbol(const char *name)
{
	struct kprobe kp = { .symbol_name = name };
	void *addr;

	if (register_kprobe(&kp))
		return NULL;
	addr = kp.addr;
	unregister_kprobe(&kp);
	return addr;
}

/* register_k*probes() take arrays of pointers. */
static struct kretprobe *alloc_probe_ptrs[ARRAY_SIZE(alloc_probes)];
static struct kprobe *free_probe_ptrs[ARRAY_SIZE(free_probes)];
static bool probes_registered;

static int kdkit_leak_register(void)
{
	unsigned int i;
	int ret;

	if (probes_registered)
		return 0;
	radix_node_free = kdkit_symbol("radix_tree_node_rcu_free");
	for (i = 0; i < ARRAY_SIZE(alloc_probes); i++)
		alloc_probe_ptrs[i] = &alloc_probes[i];
	for (i = 0; i < ARRAY_SIZE(free_probes); i++)
		free_probe_ptrs[i] = &free_probes[i];
	/* Frees first, so that nothing recorded can be freed unseen. */
	ret = register_kprobes(free_probe_ptrs, ARRAY_SIZE(free_probe_ptrs));
	if (ret)
		return ret;
	ret = register_kretprobes(alloc_probe_ptrs, ARRAY_SIZE(alloc_probe_ptrs));
	if (ret) {
		unregister_kprobes(free_probe_ptrs, ARRAY_SIZE(free_probe_ptrs));
		return ret;
	}
	probes_registered = true;
	return 0;
}

void kdkit_leak_cleanup(void)
{
	if (!probes_registered)
		return;
	unregister_kretprobes(alloc_probe_ptrs, ARRAY_SIZE(alloc_probe_ptrs));
	unregister_kprobes(free_probe_ptrs, ARRAY_SIZE(free_probe_ptrs));
	probes_registered = false;
	vfree(records);
	records = NULL;
}

int kdkit_leak_begin(void)
{
	int ret = kdkit_leak_register();

	if (ret)
		return ret;
	if (!records) {
		records = vmalloc(array_size(LEAK_MAX_RECORDS, sizeof(*records)));
		if (!records)
			return -ENOMEM;
	}
	nr_records = 0;
	overflowed = false;
	depth = 0;
	has_failed = false;
	bogus_frees = 0;
	WRITE_ONCE(watched, current);
	return 0;
}
EXPORT_SYMBOL_GPL(kdkit_leak_begin);

bool kdkit_leak_failed_site(struct kdkit_site *site)
{
	if (has_failed)
		*site = failed_site;
	return has_failed;
}
EXPORT_SYMBOL_GPL(kdkit_leak_failed_site);

int kdkit_leak_bogus_frees(struct kdkit_site *site)
{
	if (bogus_frees && site)
		*site = bogus_site;
	return bogus_frees;
}
EXPORT_SYMBOL_GPL(kdkit_leak_bogus_frees);

/*
 * Allocations kept on purpose, not for their caller: idr_preload() fills a
 * per-CPU pool of radix tree nodes; a vmap_area outlives its mapping (it is
 * purged lazily, or stays as a node of free space), and so does kmemleak's
 * note on it. Each mapping's own vm_struct is freed at once by iounmap()
 * or vfree(), and is counted.
 */
static bool kept_on_purpose(const struct kdkit_site *site)
{
	static const char *const keepers[] = {
		"__radix_tree_preload", "alloc_vmap_area", "kmemleak_scan_area",
	};
	char sym[KSYM_SYMBOL_LEN];
	unsigned int i;

	if (site->nr < 2)
		return false;
	sprint_symbol_no_offset(sym, site->entries[1]);
	for (i = 0; i < ARRAY_SIZE(keepers); i++)
		if (!strcmp(sym, keepers[i]))
			return true;
	return false;
}

/* What the window still holds; with @left, copy up to @max_left sites. */
static int leak_count(struct kdkit_site *left, unsigned int max_left)
{
	unsigned long flags;
	unsigned int i;
	int n;

	local_irq_save(flags);
	arch_spin_lock(&leak_lock);
	for (i = 0, n = 0; i < nr_records; i++) {
		if (records[i].irq < 0 && kept_on_purpose(&records[i].site))
			continue;
		if (n < max_left)
			left[n] = records[i].site;
		n++;
	}
	if (overflowed)
		n = -E2BIG;
	arch_spin_unlock(&leak_lock);
	local_irq_restore(flags);
	return n;
}

int kdkit_leak_end(struct kdkit_site *left, unsigned int max_left)
{
	int n;

	WRITE_ONCE(watched, NULL);
	/*
	 * Objects freed through RCU are freed after a grace period. Waiting
	 * for one costs milliseconds, so only when something is left.
	 */
	if (leak_count(NULL, 0))
		rcu_barrier();
	n = leak_count(left, max_left);
	nr_records = 0;
	return n;
}
EXPORT_SYMBOL_GPL(kdkit_leak_end);
