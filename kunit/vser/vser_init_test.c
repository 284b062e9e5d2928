// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit cases for vser's module init and exit, error paths included: every
 * allocation init makes is failed in turn (the kit's fault-injection sweep),
 * and a taken chrdev region is refused. The driver is reached only through
 * its init and exit and its device nodes, so any correct vser passes.
 */
#include <linux/file.h>
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/kprobes.h>
#include <linux/kdev_t.h>
#include <linux/moduleparam.h>
#include <linux/namei.h>
#include <linux/poll.h>
#include <linux/uaccess.h>
#include <kunit/test.h>
#include "kdkit.h"
#include "vser_ioctl.h"

/* The most ports vser_ioctl.h's ndevs parameter allows. */
#define VSER_MAX_PORTS	8

/* After a failed init or an exit, no /dev/vserN node may be left behind. */
static void vser_expect_no_nodes(struct kunit *test)
{
	char name[32];
	int minor;

	for (minor = 0; minor < VSER_MAX_PORTS; minor++) {
		snprintf(name, sizeof(name), VSER_DEV_PREFIX "%d", minor);
		KUNIT_EXPECT_FALSE_MSG(test, kdkit_path_exists(name),
				       "%s still exists after a failed init", name);
	}
}

static void vser_init_creates_every_node(struct kunit *test)
{
	char name[32];
	int minor;

	KUNIT_ASSERT_EQ(test, kdkit_driver_init(), 0);
	for (minor = 0; minor < VSER_DEFAULT_NDEVS; minor++) {
		snprintf(name, sizeof(name), VSER_DEV_PREFIX "%d", minor);
		KUNIT_EXPECT_TRUE_MSG(test, kdkit_path_exists(name), "%s is missing", name);
	}
	kdkit_driver_exit();
	vser_expect_no_nodes(test);
}

static void vser_init_unwinds_every_failed_allocation(struct kunit *test)
{
	kdkit_sweep_init(test, vser_expect_no_nodes, 2 + 4 * VSER_DEFAULT_NDEVS,
			 "allocates a region, a class, and per port state, FIFO, cdev and device");
}

/*
 * Take every major that alloc_chrdev_region() could hand out, and the
 * fixed majors a driver might ask for, so that init finds none free.
 */
static void vser_init_with_taken_region_returns_ebusy(struct kunit *test)
{
	static dev_t taken[512];
	unsigned int n = 0, major, i;
	int ret;

	KUNIT_ASSERT_EQ(test, kdkit_leak_begin(), 0);
	for (major = 1; major < ARRAY_SIZE(taken) && major < CHRDEV_MAJOR_MAX; major++)
		if (!register_chrdev_region(MKDEV(major, 0), VSER_DEFAULT_NDEVS, "kdkit-taken"))
			taken[n++] = MKDEV(major, 0);

	ret = kdkit_driver_init();
	if (!ret)
		kdkit_driver_exit();
	for (i = 0; i < n; i++)
		unregister_chrdev_region(taken[i], VSER_DEFAULT_NDEVS);
	KUNIT_EXPECT_EQ_MSG(test, ret, -EBUSY, "init with no free chrdev region returned %d", ret);
	KUNIT_EXPECT_EQ_MSG(test, kdkit_leak_end(NULL, 0), 0,
			    "init with no free region left allocations behind");
	vser_expect_no_nodes(test);

	/* A clean load and unload still work afterwards. */
	KUNIT_ASSERT_EQ(test, kdkit_driver_init(), 0);
	kdkit_driver_exit();
}

/*
 * Exit undoes init in reverse: the char device region goes back only once
 * no cdev and no device in it is left, or a new owner of those numbers
 * could meet them. Kprobes note the order of the exit's calls.
 */
static struct {
	struct task_struct *exiting;
	dev_t from[4];			/* regions given back so far */
	unsigned int count[4], regions;
	const char *late;		/* what was removed after its region */
} order_watch;

static void order_watch_removed(dev_t devt, const char *what)
{
	unsigned int i;

	for (i = 0; i < order_watch.regions; i++)
		if (devt - order_watch.from[i] < order_watch.count[i] && !order_watch.late)
			order_watch.late = what;
}

static int order_region(struct kprobe *p, struct pt_regs *regs)
{
	unsigned int n = order_watch.regions;

	if (current == order_watch.exiting && n < ARRAY_SIZE(order_watch.from)) {
		order_watch.from[n] = regs_get_kernel_argument(regs, 0);
		order_watch.count[n] = regs_get_kernel_argument(regs, 1);
		order_watch.regions++;
	}
	return 0;
}

static int order_cdev_del(struct kprobe *p, struct pt_regs *regs)
{
	if (current == order_watch.exiting)
		order_watch_removed(((struct cdev *)regs_get_kernel_argument(regs, 0))->dev,
				    "a cdev (cdev_del)");
	return 0;
}

static int order_device_del(struct kprobe *p, struct pt_regs *regs)
{
	if (current == order_watch.exiting)
		order_watch_removed(((struct device *)regs_get_kernel_argument(regs, 0))->devt,
				    "a device and its node (device_del)");
	return 0;
}

/* Exit undoes init: nothing allocated, nothing registered, no node. */
static void vser_exit_leaves_nothing(struct kunit *test)
{
	struct kprobe kp[] = {
		{ .symbol_name = "unregister_chrdev_region", .pre_handler = order_region },
		{ .symbol_name = "cdev_del", .pre_handler = order_cdev_del },
		{ .symbol_name = "device_del", .pre_handler = order_device_del },
	};
	struct kprobe *kps[] = { &kp[0], &kp[1], &kp[2] };
	int ret;

	KUNIT_ASSERT_EQ(test, kdkit_leak_begin(), 0);
	ret = kdkit_driver_init();
	if (!ret) {
		memset(&order_watch, 0, sizeof(order_watch));
		order_watch.exiting = current;
		KUNIT_EXPECT_EQ(test, register_kprobes(kps, ARRAY_SIZE(kps)), 0);
		kdkit_driver_exit();
		unregister_kprobes(kps, ARRAY_SIZE(kps));
		KUNIT_EXPECT_PTR_EQ_MSG(test, order_watch.late, NULL,
					"exit gave back the char device region before %s in it was gone: undo init in reverse",
					order_watch.late);
		kdkit_expect_exit_left_nothing(test);
	}
	kdkit_leak_expect_none(test, "init, then exit");
	KUNIT_EXPECT_EQ_MSG(test, ret, 0, "init returned %d", ret);
	vser_expect_no_nodes(test);
}

/* Set one of the driver's module parameters, as insmod would. */
static int vser_set_param(const char *name, const char *value)
{
	struct module *mod = kdkit_driver_module();
	unsigned int i;

	for (i = 0; i < mod->num_kp; i++)
		if (!strcmp(mod->kp[i].name, name))
			return mod->kp[i].ops->set(value, &mod->kp[i]);
	return -ENOENT;
}

static void vser_default_params(void)
{
	vser_set_param("ndevs", __stringify(VSER_DEFAULT_NDEVS));
	vser_set_param("fifo_size", __stringify(VSER_DEFAULT_FIFO_SIZE));
}

/* The largest values it takes make that many ports, each that big. */
static void vser_init_honours_its_parameters(struct kunit *test)
{
	char name[32], *data;
	char __user *ubuf;
	struct file *f;
	int minor;

	KUNIT_ASSERT_EQ_MSG(test, vser_set_param("ndevs", __stringify(VSER_MAX_PORTS)), 0,
			    "vser has no ndevs parameter");
	KUNIT_ASSERT_EQ_MSG(test, vser_set_param("fifo_size", "100"), 0,
			    "vser has no fifo_size parameter");
	KUNIT_ASSERT_EQ_MSG(test, kdkit_driver_init(), 0, "init with ndevs=8 fifo_size=100 failed");
	for (minor = 0; minor <= VSER_MAX_PORTS; minor++) {
		snprintf(name, sizeof(name), VSER_DEV_PREFIX "%d", minor);
		KUNIT_EXPECT_EQ_MSG(test, kdkit_path_exists(name), minor < VSER_MAX_PORTS,
				    "with ndevs=8, %s %s", name,
				    minor < VSER_MAX_PORTS ? "is missing" : "exists");
	}
	/* fifo_size=100 is rounded up to 128, as kfifo_alloc() does. */
	kdkit_umem_setup(test);
	ubuf = kdkit_umem_alloc(test, 256);
	data = kunit_kzalloc(test, 256, GFP_KERNEL);
	f = filp_open(VSER_DEV_PREFIX "7", O_RDWR | O_NONBLOCK, 0);
	if (!IS_ERR(f)) {
		/* Nothing read: a broken read costs the read cases only. */
		KUNIT_ASSERT_EQ(test, copy_to_user(ubuf, data, 256), 0);
		KUNIT_EXPECT_EQ_MSG(test, f->f_op->write(f, ubuf, 110, &f->f_pos), 110L,
				    "a write of 110 bytes to an empty port with fifo_size=100");
		/* Between 100 and 128 bytes held, the FIFO still has room. */
		KUNIT_EXPECT_TRUE_MSG(test, f->f_op->poll && f->f_op->poll(f, NULL) & EPOLLOUT,
				      "with 110 of 128 bytes held, poll says the port is not writable: the capacity is the FIFO's, not fifo_size");
		KUNIT_EXPECT_EQ_MSG(test, f->f_op->write(f, ubuf, 256, &f->f_pos), 18L,
				    "a write of 256 bytes with 110 of 128 held (the capacity is the FIFO's, not fifo_size)");
		kdkit_close(f);
	} else {
		KUNIT_FAIL(test, "open " VSER_DEV_PREFIX "7 with ndevs=8: %ld", PTR_ERR(f));
	}
	kdkit_driver_exit();
	vser_expect_no_nodes(test);
}

/* Values the module's description does not allow: init refuses them. */
static void vser_init_refuses_parameters_out_of_range(struct kunit *test)
{
	static const char *const bad[][2] = {
		{ "ndevs", "0" }, { "ndevs", "9" },
		{ "fifo_size", "15" }, { "fifo_size", "65537" },
	};
	unsigned int i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		vser_default_params();
		KUNIT_ASSERT_EQ(test, vser_set_param(bad[i][0], bad[i][1]), 0);
		KUNIT_ASSERT_EQ(test, kdkit_leak_begin(), 0);
		ret = kdkit_driver_init();
		if (!ret)
			kdkit_driver_exit();
		KUNIT_EXPECT_EQ_MSG(test, ret, -EINVAL, "init with %s=%s returned %d",
				    bad[i][0], bad[i][1], ret);
		KUNIT_EXPECT_EQ_MSG(test, kdkit_leak_end(NULL, 0), 0,
				    "init with %s=%s left allocations behind",
				    bad[i][0], bad[i][1]);
	}
	vser_default_params();
	vser_expect_no_nodes(test);
}

/*
 * A port is live the moment cdev_add() returns: a process may open it at
 * once (udev, or a node made earlier). Everything it uses must be ready
 * before. Init is stopped right after each call that makes a port
 * reachable while another thread opens that port through a node of its
 * own, writes a byte, polls for it and asks the baud rate.
 */
static struct {
	dev_t devt;		/* the port made reachable last */
	ssize_t wrote;
	bool readable;
	long baud_ret;
	u32 baud;
	bool opened;
	int ret;		/* what init returned */
} early;

static int early_cdev_add(struct kprobe *p, struct pt_regs *regs)
{
	WRITE_ONCE(early.devt, regs_get_kernel_argument(regs, 1));
	return 0;
}

static int early_cdev_device_add(struct kprobe *p, struct pt_regs *regs)
{
	WRITE_ONCE(early.devt, ((struct cdev *)regs_get_kernel_argument(regs, 0))->dev);
	return 0;
}

static void early_init(void *data)
{
	early.ret = kdkit_driver_init();
}

/* A node of the tests' own for @devt in /dev, as mknod(1) would make it. */
#define EARLY_NODE	"kdkit-early"

static int early_node(dev_t devt)
{
	struct path parent;
	struct dentry *dentry = kern_path_create(AT_FDCWD, "/dev/" EARLY_NODE, &parent, 0);
	int err;

	if (IS_ERR(dentry))
		return PTR_ERR(dentry);
	err = vfs_mknod(mnt_user_ns(parent.mnt), d_inode(parent.dentry), dentry,
			S_IFCHR | 0600, devt);
	done_path_create(&parent, dentry);
	return err;
}

/* Gone after each use: a node kept would keep its inode's cdev too. */
static void early_unlink(void)
{
	struct dentry *dentry;
	struct path dev;
	struct inode *dir;

	if (kern_path("/dev", LOOKUP_DIRECTORY, &dev))
		return;
	dir = d_inode(dev.dentry);
	inode_lock_nested(dir, I_MUTEX_PARENT);
	dentry = lookup_one_len(EARLY_NODE, dev.dentry, strlen(EARLY_NODE));
	if (!IS_ERR(dentry)) {
		if (d_really_is_positive(dentry))
			vfs_unlink(mnt_user_ns(dev.mnt), dir, dentry, NULL);
		dput(dentry);
	}
	inode_unlock(dir);
	path_put(&dev);
}

static void early_use(void *data)
{
	char __user *ubuf = (__force char __user *)data;
	dev_t devt = READ_ONCE(early.devt);
	struct file *f;
	loff_t pos = 0;
	char c = 'k';

	early.opened = false;
	if (!devt || early_node(devt))
		return;
	f = filp_open("/dev/" EARLY_NODE, O_RDWR | O_NONBLOCK, 0);
	early_unlink();
	if (IS_ERR(f))
		return;
	early.opened = true;
	early.wrote = copy_to_user(ubuf, &c, 1) ? -EFAULT : f->f_op->write(f, ubuf, 1, &pos);
	/* Not read(): a broken read costs the read cases, not this one. */
	early.readable = f->f_op->poll && (f->f_op->poll(f, NULL) & EPOLLIN);
	early.baud_ret = f->f_op->unlocked_ioctl ?
			 f->f_op->unlocked_ioctl(f, VSER_GET_BAUD, (unsigned long)(ubuf + 2)) :
			 -ENOTTY;
	if (!early.baud_ret && copy_from_user(&early.baud, ubuf + 2, sizeof(early.baud)))
		early.baud_ret = -EFAULT;
	kdkit_close(f);
}

static bool early_check(struct kunit *test, void *data, const void *stopped_at)
{
	bool ok = !early.ret;

	if (early.ret)
		KUNIT_FAIL(test, "init returned %d", early.ret);
	else
		kdkit_driver_exit();
	if (early.opened && (early.wrote != 1 || !early.readable || early.baud_ret ||
			     early.baud != VSER_DEFAULT_BAUD)) {
		KUNIT_FAIL(test,
			   "port %u:%u could be opened with init stopped at %pS, before it worked: a write of 1 byte gave %zd, then poll said %sreadable, VSER_GET_BAUD %ld (baud %u); set a port up before cdev_add()",
			   MAJOR(early.devt), MINOR(early.devt), stopped_at, early.wrote,
			   early.readable ? "" : "not ", early.baud_ret, early.baud);
		ok = false;
	}
	early.devt = 0;
	return ok;
}

static void vser_ports_work_once_reachable(struct kunit *test)
{
	/* device_create() is a printf: as a plain pointer, W=1 asks for a format. */
	static void *const reachable[] = {
		cdev_add, cdev_device_add, (void *)device_create, NULL
	};
	struct kprobe watch[] = {
		{ .symbol_name = "cdev_add", .pre_handler = early_cdev_add },
		{ .symbol_name = "cdev_device_add", .pre_handler = early_cdev_device_add },
	};
	struct kprobe *watches[] = { &watch[0], &watch[1] };
	struct kdkit_interleave il = {
		.first = early_init,
		.second = early_use,
		.check = early_check,
		.after = reachable,
	};

	kdkit_umem_setup(test);
	il.data = (__force void *)kdkit_umem_alloc(test, 16);
	il.mm = current->mm;
	memset(&early, 0, sizeof(early));
	KUNIT_ASSERT_EQ(test, register_kprobes(watches, ARRAY_SIZE(watches)), 0);
	kdkit_interleave(test, &il);
	unregister_kprobes(watches, ARRAY_SIZE(watches));
}

static void vser_init_exit(struct kunit *test)
{
	vser_default_params();
}

static struct kunit_case vser_init_cases[] = {
	KUNIT_CASE(vser_init_creates_every_node),
	KUNIT_CASE(vser_init_unwinds_every_failed_allocation),
	KUNIT_CASE(vser_init_with_taken_region_returns_ebusy),
	KUNIT_CASE(vser_exit_leaves_nothing),
	KUNIT_CASE(vser_ports_work_once_reachable),
	KUNIT_CASE(vser_init_honours_its_parameters),
	KUNIT_CASE(vser_init_refuses_parameters_out_of_range),
	{}
};

static struct kunit_suite vser_init_suite = {
	.name = "vser_init",
	.exit = vser_init_exit,
	.test_cases = vser_init_cases,
};

kunit_test_suite(vser_init_suite);

MODULE_LICENSE("GPL");
