// SPDX-License-Identifier: GPL-2.0
/*
 * Failing the calls a driver makes that fail for reasons other than memory:
 * no interrupt or register bank described, a DMA mask the platform cannot
 * give, a name or region already taken. fail-nth reaches only allocations,
 * so the error-path sweep (kdkit_sweep.c) uses this for the rest.
 *
 * A kprobe sits on the entry of each such function. While armed, it counts
 * the calls the watched task makes from the module under test, and at the
 * Nth it returns at once with the function's usual error, as if it had
 * failed: the function never runs, so nothing is half done. The kernel's
 * fail_function does the same, for the few functions marked for it.
 */
#include <linux/err.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/uaccess.h>
#include "kdkit.h"

/*
 * A failure a correct driver may absorb by trying another way to the same
 * end: a fixed major, then a dynamic one; a 64-bit DMA mask, then a
 * narrower one; a resource by name, then by index.
 */
enum fallback { ONLY_ITSELF, CHRDEV_REGION, DMA_MASK, IRQ_LOOKUP, RESOURCE_LOOKUP };

struct fail_point {
	struct kprobe kp;
	long err;		/* what it returns: -errno, ERR_PTR(-errno) or NULL */
	int irq_arg;		/* which argument is an IRQ number, or -1 */
	enum fallback family;	/* another way to the same end, if any */
	bool registered;
};

#define FAILS(fn, error) { .kp.symbol_name = #fn, .err = (error), .irq_arg = -1 }
#define FAILS_OR(fn, error, other) \
	{ .kp.symbol_name = #fn, .err = (error), .irq_arg = -1, .family = (other) }
#define FAILS_IRQ(fn, error, arg) { .kp.symbol_name = #fn, .err = (error), .irq_arg = (arg) }

/*
 * What a lab driver's bring-up calls that can fail without an allocation
 * failing, with an error each really returns. Allocators are fail-nth's.
 * Optional lookups (platform_get_irq_optional()) may fail harmlessly, and
 * debugfs must be ignored when it fails: neither is here. Nor is
 * dma_set_coherent_mask(): dma_set_mask_and_coherent(), inlined into the
 * driver, ignores what it returns.
 */
static struct fail_point points[] = {
	FAILS_OR(alloc_chrdev_region, -EBUSY, CHRDEV_REGION),
	FAILS_OR(register_chrdev_region, -EBUSY, CHRDEV_REGION),
	FAILS_OR(__register_chrdev, -EBUSY, CHRDEV_REGION),
	FAILS(cdev_add, -EBUSY),
	FAILS(cdev_device_add, -EBUSY),
	FAILS(__class_create, -EEXIST),
	FAILS(device_create, -EEXIST),
	FAILS(device_add, -EEXIST),
	FAILS(device_register, -EEXIST),
	FAILS(misc_register, -EBUSY),
	FAILS(sysfs_create_group, -EEXIST),
	FAILS(device_create_file, -EEXIST),
	FAILS(__platform_driver_register, -EBUSY),
	FAILS_OR(platform_get_resource, 0, RESOURCE_LOOKUP),
	FAILS_OR(platform_get_resource_byname, 0, RESOURCE_LOOKUP),
	FAILS_OR(platform_get_irq, -ENXIO, IRQ_LOOKUP),
	FAILS_OR(platform_get_irq_byname, -ENXIO, IRQ_LOOKUP),
	FAILS(__request_region, 0),
	FAILS(__devm_request_region, 0),
	FAILS(ioremap, 0),
	FAILS(devm_ioremap, 0),
	FAILS(devm_ioremap_resource, -EBUSY),
	FAILS(devm_platform_ioremap_resource, -EBUSY),
	FAILS(devm_platform_ioremap_resource_byname, -EBUSY),
	FAILS(devm_platform_get_and_ioremap_resource, -EBUSY),
	FAILS_IRQ(request_threaded_irq, -EBUSY, 0),
	FAILS_IRQ(devm_request_threaded_irq, -EBUSY, 1),
	FAILS_IRQ(request_any_context_irq, -EBUSY, 0),
	FAILS_IRQ(devm_request_any_context_irq, -EBUSY, 1),
	FAILS_OR(dma_set_mask, -EIO, DMA_MASK),
	FAILS(led_classdev_register_ext, -EEXIST),
	FAILS(devm_led_classdev_register_ext, -EEXIST),
};

/* Written by the watched task only, while armed, and read after. */
static struct {
	struct task_struct *task;	/* NULL while disarmed */
	struct module *mod;
	unsigned int nth, calls;
	enum fallback family;		/* of the call that failed */
	struct kdkit_failed_call out;
} fail;

/* As if the function had returned @err at once: pop its return address. */
static void fail_return(struct pt_regs *regs, unsigned long caller, long err)
{
	regs_set_return_value(regs, err);
	instruction_pointer_set(regs, caller);
	regs->sp += sizeof(unsigned long);
}

/*
 * Did the module call @fn itself, returning to @caller? A kernel function
 * it called may have jumped to @fn as a tail call, leaving the module's
 * return address on the stack: that is not the driver's call, and @fn's
 * error may not be the one the driver was promised (NULL, not ERR_PTR).
 * Modules call the kernel with a direct "call rel32".
 */
static bool called_by_module(unsigned long caller, const void *fn)
{
	u8 opcode;
	s32 rel;

	if (!within_module(caller, fail.mod) ||
	    get_kernel_nofault(opcode, (u8 *)caller - 5) ||
	    get_kernel_nofault(rel, (s32 *)(caller - 4)))
		return false;
	return opcode == 0xe8 && caller + rel == (unsigned long)fn;
}

static int fail_pre(struct kprobe *kp, struct pt_regs *regs)
{
	struct fail_point *fp = container_of(kp, struct fail_point, kp);
	unsigned long caller = regs_get_kernel_stack_nth(regs, 0);
	struct kdkit_failed_call *out = &fail.out;

	if (READ_ONCE(fail.task) != current || !called_by_module(caller, kp->addr))
		return 0;
	if (fp->irq_arg >= 0 && !out->bad_irq_fn) {
		int irq = regs_get_kernel_argument(regs, fp->irq_arg);

		if (irq <= 0) {
			out->bad_irq = irq;
			out->bad_irq_fn = kp->symbol_name;
		}
	}
	if (++fail.calls != fail.nth) {
		/* Another way to what failed: a fallback, or a retry. */
		if (out->fn && fp->family && fp->family == fail.family)
			out->retried = true;
		return 0;
	}
	fail.family = fp->family;
	out->fn = kp->symbol_name;
	out->caller = caller;
	out->err = fp->err;
	fail_return(regs, caller, fp->err);
	return 1;
}

/* Optimised kprobes cannot change where execution goes; this stops that. */
static void fail_post(struct kprobe *kp, struct pt_regs *regs, unsigned long flags)
{
}

static bool registered;

static void fail_register(void)
{
	unsigned int i;

	if (registered)
		return;
	/* One by one: a function this kernel lacks is no failure point. */
	for (i = 0; i < ARRAY_SIZE(points); i++) {
		points[i].kp.pre_handler = fail_pre;
		points[i].kp.post_handler = fail_post;
		points[i].registered = !register_kprobe(&points[i].kp);
	}
	registered = true;
}

void kdkit_fail_cleanup(void)
{
	struct kprobe *kps[ARRAY_SIZE(points)];
	unsigned int i, n = 0;

	if (!registered)
		return;
	for (i = 0; i < ARRAY_SIZE(points); i++)
		if (points[i].registered)
			kps[n++] = &points[i].kp;
	/* At once: one grace period for all of them. */
	unregister_kprobes(kps, n);
	registered = false;
}

void kdkit_fail_begin(unsigned int nth)
{
	fail_register();
	memset(&fail.out, 0, sizeof(fail.out));
	fail.mod = kdkit_driver_module();
	fail.nth = nth;
	fail.calls = 0;
	WRITE_ONCE(fail.task, current);
}

bool kdkit_fail_end(struct kdkit_failed_call *out)
{
	WRITE_ONCE(fail.task, NULL);
	*out = fail.out;
	return !!out->fn;
}
