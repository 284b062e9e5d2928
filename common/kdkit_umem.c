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
#include <linux/highmem.h>
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

/*
 * A read-only user page holding @size bytes of @data, to pass where a
 * driver may only read (a write-only ioctl's argument): a write to it
 * faults. Filled as a debugger pokes a process, through a forced write.
 */
void __user *kdkit_umem_alloc_ro(struct kunit *test, const void *data, size_t size)
{
	struct page *page;
	unsigned long addr;
	long got;
	void *kaddr;

	KUNIT_ASSERT_LE(test, size, PAGE_SIZE);
	addr = vm_mmap(NULL, 0, PAGE_SIZE, PROT_READ, MAP_ANONYMOUS | MAP_PRIVATE, 0);
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR_VALUE(addr), "vm_mmap: %ld", (long)addr);
	mmap_read_lock(current->mm);
	got = get_user_pages(addr, 1, FOLL_WRITE | FOLL_FORCE, &page, NULL);
	mmap_read_unlock(current->mm);
	KUNIT_ASSERT_EQ_MSG(test, got, 1L, "get_user_pages on a read-only page: %ld", got);
	kaddr = kmap_local_page(page);
	memcpy(kaddr, data, size);
	kunmap_local(kaddr);
	set_page_dirty_lock(page);
	put_page(page);
	return (void __user *)addr;
}
EXPORT_SYMBOL_GPL(kdkit_umem_alloc_ro);
