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
#include <linux/anon_inodes.h>
#include <linux/file.h>
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

/*
 * A user buffer of two pages whose second page stalls the first access to
 * it until kdkit_stall_release(): a test holds a driver inside
 * copy_from_user() with the buffer half copied, and sees what another
 * thread can do meanwhile. The pages are served by a fault handler of the
 * kit's, which waits there (a fault may sleep) on the faulting thread.
 */
struct kdkit_stall {
	struct page *pages[2];
	struct completion reached, go;
};

static vm_fault_t stall_fault(struct vm_fault *vmf)
{
	struct kdkit_stall *st = vmf->vma->vm_private_data;

	if (vmf->pgoff >= ARRAY_SIZE(st->pages))
		return VM_FAULT_SIGBUS;
	if (vmf->pgoff == 1) {
		complete(&st->reached);
		/* Bounded: a test that never releases must not hang the VM. */
		wait_for_completion_timeout(&st->go, 30 * HZ);
	}
	get_page(st->pages[vmf->pgoff]);
	vmf->page = st->pages[vmf->pgoff];
	return 0;
}

static const struct vm_operations_struct stall_vm_ops = {
	.fault = stall_fault,
};

static int stall_mmap(struct file *file, struct vm_area_struct *vma)
{
	vma->vm_ops = &stall_vm_ops;
	vma->vm_private_data = file->private_data;
	return 0;
}

static void stall_free(struct kdkit_stall *st)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(st->pages); i++)
		if (st->pages[i])
			put_page(st->pages[i]);
	kfree(st);
}

static int stall_release(struct inode *inode, struct file *file)
{
	stall_free(file->private_data);
	return 0;
}

static const struct file_operations stall_fops = {
	.owner = THIS_MODULE,
	.mmap = stall_mmap,
	.release = stall_release,
};

void __user *kdkit_umem_alloc_stall(struct kunit *test, const void *data, size_t size,
				    struct kdkit_stall **stall)
{
	struct kdkit_stall *st = kzalloc(sizeof(*st), GFP_KERNEL);
	struct file *file;
	unsigned long addr;
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(test, st);
	init_completion(&st->reached);
	init_completion(&st->go);
	for (i = 0; i < ARRAY_SIZE(st->pages); i++) {
		st->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!st->pages[i])
			break;
		memcpy_to_page(st->pages[i], 0, data + i * PAGE_SIZE,
			       min_t(size_t, size - min(size, i * PAGE_SIZE), PAGE_SIZE));
	}
	file = i == ARRAY_SIZE(st->pages) ?
	       anon_inode_getfile("kdkit-stall", &stall_fops, st, O_RDWR) : ERR_PTR(-ENOMEM);
	if (IS_ERR(file)) {
		stall_free(st);
		KUNIT_ASSERT_FAILURE(test, "no stalling buffer: %ld", PTR_ERR(file));
	}
	addr = vm_mmap(file, 0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	/* The mapping holds the file now; the buffer lives until it goes. */
	fput(file);
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR_VALUE(addr), "vm_mmap: %ld", (long)addr);
	*stall = st;
	return (void __user *)addr;
}
EXPORT_SYMBOL_GPL(kdkit_umem_alloc_stall);

bool kdkit_stall_wait(struct kdkit_stall *st, unsigned long timeout)
{
	return wait_for_completion_timeout(&st->reached, timeout);
}
EXPORT_SYMBOL_GPL(kdkit_stall_wait);

void kdkit_stall_release(struct kdkit_stall *st)
{
	complete_all(&st->go);
}
EXPORT_SYMBOL_GPL(kdkit_stall_release);
