// SPDX-License-Identifier: GPL-2.0
/*
 * User memory for test cases, so that a test can call a driver's read,
 * write and ioctl with real __user pointers, as a process does.
 *
 * KUnit runs each case in a kernel thread, which has no address space, and
 * 6.1 has no kunit_vm_mmap(). The module loader's process (insmod) has one
 * and waits while the suites run, so kdkit.ko lends its mm to the case's
 * thread and maps scratch pages there. They are unmapped when the case
 * ends; if the case aborts, insmod's exit takes them down.
 */
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/sched/mm.h>
#include "kdkit.h"

static struct mm_struct *loader_mm;

void kdkit_umem_loader(struct mm_struct *mm)
{
	if (loader_mm)
		mmput(loader_mm);
	if (mm)
		mmget(mm);
	loader_mm = mm;
}

struct umem {
	struct task_struct *owner;
	struct mm_struct *mm;
};

static int umem_init(struct kunit_resource *res, void *context)
{
	struct umem *u = kzalloc(sizeof(*u), GFP_KERNEL);

	if (!u)
		return -ENOMEM;
	u->owner = current;
	u->mm = context;
	/* exit_mm() drops this reference if the case's thread dies early. */
	mmget(u->mm);
	kthread_use_mm(u->mm);
	res->data = u;
	return 0;
}

static void umem_free(struct kunit_resource *res)
{
	struct umem *u = res->data;

	if (current == u->owner) {
		kthread_unuse_mm(u->mm);
		mmput(u->mm);
	}
	kfree(u);
}

void kdkit_umem_setup(struct kunit *test)
{
	KUNIT_ASSERT_NOT_NULL_MSG(test, loader_mm, "no loader mm to borrow");
	KUNIT_ASSERT_NOT_NULL(test,
			      kunit_alloc_resource(test, umem_init, umem_free,
						   GFP_KERNEL, loader_mm));
}
EXPORT_SYMBOL_GPL(kdkit_umem_setup);

void __user *kdkit_umem_alloc(struct kunit *test, size_t size)
{
	unsigned long addr;

	addr = vm_mmap(NULL, 0, PAGE_ALIGN(size), PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE, 0);
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR_VALUE(addr), "vm_mmap: %ld", (long)addr);
	return (void __user *)addr;
}
EXPORT_SYMBOL_GPL(kdkit_umem_alloc);
