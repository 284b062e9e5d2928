// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit cases for vser's file operations, called with real user buffers as
 * read(2), write(2), poll(2) and ioctl(2) would call them. Every case loads
 * a fresh driver and opens its nodes O_NONBLOCK; what only a process can
 * show (blocking, signals, SIGIO) is in the userspace tests.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kprobes.h>
#include <linux/poll.h>
#include <linux/uaccess.h>
#include <kunit/test.h>
#include "kdkit.h"
#include "vser_ioctl.h"

#define BUF_SIZE	(4 * VSER_DEFAULT_FIFO_SIZE)

/* 6.1 has no KUNIT_EXPECT_MEMEQ. */
#define EXPECT_BYTES(test, got, want, n) do {				\
	const char *got_ = (const char *)(got), *want_ = (want);	\
	int n_ = (n);							\
									\
	KUNIT_EXPECT_EQ_MSG(test, memcmp(got_, want_, n_), 0,		\
			    "got '%.*s', expected '%.*s'", n_, got_, n_, want_); \
} while (0)

struct vser_ctx {
	struct file *port[VSER_DEFAULT_NDEVS];
	char __user *ubuf;	/* where the driver copies to and from */
	char kbuf[BUF_SIZE];
};

static int vser_fops_init(struct kunit *test)
{
	struct vser_ctx *ctx;
	char name[32];
	int minor, ret;

	ret = kdkit_driver_init();
	if (ret) {
		kunit_err(test, "vser's init returned %d", ret);
		return ret;
	}
	ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	test->priv = ctx;
	if (!ctx)
		return -ENOMEM;
	for (minor = 0; minor < VSER_DEFAULT_NDEVS; minor++) {
		snprintf(name, sizeof(name), VSER_DEV_PREFIX "%d", minor);
		ctx->port[minor] = filp_open(name, O_RDWR | O_NONBLOCK, 0);
		if (IS_ERR(ctx->port[minor])) {
			kunit_err(test, "open %s: %ld", name, PTR_ERR(ctx->port[minor]));
			return PTR_ERR(ctx->port[minor]);
		}
	}
	kdkit_umem_setup(test);
	ctx->ubuf = kdkit_umem_alloc(test, BUF_SIZE);
	return 0;
}

static void vser_fops_exit(struct kunit *test)
{
	struct vser_ctx *ctx = test->priv;
	int minor;

	if (!ctx)
		return;		/* init failed: there is no driver to unload */
	for (minor = 0; minor < VSER_DEFAULT_NDEVS; minor++)
		if (!IS_ERR_OR_NULL(ctx->port[minor]))
			kdkit_close(ctx->port[minor]);
	kdkit_driver_exit();
}

/* write(2) of @len bytes of @data to port @minor. */
static ssize_t vser_write(struct kunit *test, int minor, const char *data, size_t len)
{
	struct vser_ctx *ctx = test->priv;
	struct file *f = ctx->port[minor];

	KUNIT_ASSERT_EQ(test, copy_to_user(ctx->ubuf, data, len), 0);
	return f->f_op->write(f, ctx->ubuf, len, &f->f_pos);
}

/* read(2) of up to @len bytes from port @minor, into ctx->kbuf. */
static ssize_t vser_read(struct kunit *test, int minor, size_t len)
{
	struct vser_ctx *ctx = test->priv;
	struct file *f = ctx->port[minor];
	ssize_t n = f->f_op->read(f, ctx->ubuf, len, &f->f_pos);

	if (n > 0)
		KUNIT_ASSERT_EQ(test, copy_from_user(ctx->kbuf, ctx->ubuf, n), 0);
	return n;
}

/* The EPOLLIN and EPOLLOUT bits poll(2) would report, as a plain number. */
static unsigned int vser_poll(struct kunit *test, int minor)
{
	__poll_t mask = vfs_poll(((struct vser_ctx *)test->priv)->port[minor], NULL);

	return (__force unsigned int)(mask & (EPOLLIN | EPOLLOUT));
}

#define POLLBIT_IN	((__force unsigned int)EPOLLIN)
#define POLLBIT_OUT	((__force unsigned int)EPOLLOUT)

static void vser_read_returns_what_was_written(struct kunit *test)
{
	struct vser_ctx *ctx = test->priv;

	KUNIT_EXPECT_EQ(test, vser_write(test, 0, "hello", 5), 5);
	KUNIT_ASSERT_EQ(test, vser_read(test, 0, BUF_SIZE), 5);
	EXPECT_BYTES(test, ctx->kbuf, "hello", 5);
}

static void vser_read_empty_nonblocking_returns_eagain(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, vser_read(test, 0, 1), -EAGAIN);
}

static void vser_write_full_nonblocking_returns_eagain(struct kunit *test)
{
	char data[VSER_DEFAULT_FIFO_SIZE];

	memset(data, 'x', sizeof(data));
	KUNIT_ASSERT_EQ(test, vser_write(test, 0, data, sizeof(data)), sizeof(data));
	KUNIT_EXPECT_EQ(test, vser_write(test, 0, "y", 1), -EAGAIN);
}

static void vser_write_beyond_room_moves_what_fits(struct kunit *test)
{
	char data[VSER_DEFAULT_FIFO_SIZE + 10];

	memset(data, 'x', sizeof(data));
	KUNIT_EXPECT_EQ(test, vser_write(test, 0, data, 10), 10);
	/* A partial write returns the count it moved. */
	KUNIT_EXPECT_EQ(test, vser_write(test, 0, data, sizeof(data)),
			VSER_DEFAULT_FIFO_SIZE - 10);
}

static void vser_read_short_leaves_the_rest(struct kunit *test)
{
	struct vser_ctx *ctx = test->priv;

	KUNIT_ASSERT_EQ(test, vser_write(test, 0, "abcdef", 6), 6);
	KUNIT_ASSERT_EQ(test, vser_read(test, 0, 2), 2);
	EXPECT_BYTES(test, ctx->kbuf, "ab", 2);
	KUNIT_ASSERT_EQ(test, vser_read(test, 0, BUF_SIZE), 4);
	EXPECT_BYTES(test, ctx->kbuf, "cdef", 4);
}

static void vser_poll_reports_readable_and_writable(struct kunit *test)
{
	char data[VSER_DEFAULT_FIFO_SIZE];

	/* Empty: writable only. */
	KUNIT_EXPECT_EQ(test, vser_poll(test, 0), POLLBIT_OUT);
	KUNIT_ASSERT_EQ(test, vser_write(test, 0, "z", 1), 1);
	KUNIT_EXPECT_EQ(test, vser_poll(test, 0), POLLBIT_IN | POLLBIT_OUT);
	/* Full: readable only. */
	memset(data, 'x', sizeof(data));
	vser_write(test, 0, data, sizeof(data));
	KUNIT_EXPECT_EQ(test, vser_poll(test, 0), POLLBIT_IN);
}

static void vser_ports_are_independent(struct kunit *test)
{
	struct vser_ctx *ctx = test->priv;
	u32 baud = 9600;

	KUNIT_ASSERT_EQ(test, vser_write(test, 0, "zero", 4), 4);
	KUNIT_EXPECT_EQ(test, vser_read(test, 1, BUF_SIZE), -EAGAIN);
	KUNIT_ASSERT_EQ(test, vser_write(test, 1, "one", 3), 3);
	KUNIT_ASSERT_EQ(test, vser_read(test, 0, BUF_SIZE), 4);
	EXPECT_BYTES(test, ctx->kbuf, "zero", 4);

	KUNIT_ASSERT_EQ(test, copy_to_user(ctx->ubuf, &baud, sizeof(baud)), 0);
	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_SET_BAUD, ctx->ubuf, 0);
	KDKIT_ASSERT_IOCTL(test, ctx->port[1], VSER_GET_BAUD, ctx->ubuf, 0);
	KUNIT_ASSERT_EQ(test, copy_from_user(&baud, ctx->ubuf, sizeof(baud)), 0);
	KUNIT_EXPECT_EQ(test, baud, VSER_DEFAULT_BAUD);
}

static void vser_ioctl_baud_round_trips(struct kunit *test)
{
	struct vser_ctx *ctx = test->priv;
	u32 baud;

	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_GET_BAUD, ctx->ubuf, 0);
	KUNIT_ASSERT_EQ(test, copy_from_user(&baud, ctx->ubuf, sizeof(baud)), 0);
	KUNIT_EXPECT_EQ(test, baud, VSER_DEFAULT_BAUD);

	baud = 9600;
	KUNIT_ASSERT_EQ(test, copy_to_user(ctx->ubuf, &baud, sizeof(baud)), 0);
	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_SET_BAUD, ctx->ubuf, 0);
	baud = 0;
	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_GET_BAUD, ctx->ubuf, 0);
	KUNIT_ASSERT_EQ(test, copy_from_user(&baud, ctx->ubuf, sizeof(baud)), 0);
	KUNIT_EXPECT_EQ(test, baud, 9600);
}

static void vser_ioctl_frame_round_trips(struct kunit *test)
{
	struct vser_ctx *ctx = test->priv;
	struct vser_frame frame = { 7, VSER_PARITY_EVEN, 2, 0 }, got;

	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_GET_FRAME, ctx->ubuf, 0);
	KUNIT_ASSERT_EQ(test, copy_from_user(&got, ctx->ubuf, sizeof(got)), 0);
	KUNIT_EXPECT_EQ(test, got.data_bits, 8);
	KUNIT_EXPECT_EQ(test, got.parity, VSER_PARITY_NONE);
	KUNIT_EXPECT_EQ(test, got.stop_bits, 1);

	KUNIT_ASSERT_EQ(test, copy_to_user(ctx->ubuf, &frame, sizeof(frame)), 0);
	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_SET_FRAME, ctx->ubuf, 0);
	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_GET_FRAME, ctx->ubuf, 0);
	KUNIT_ASSERT_EQ(test, copy_from_user(&got, ctx->ubuf, sizeof(got)), 0);
	KUNIT_EXPECT_EQ(test, memcmp(&got, &frame, sizeof(frame)), 0);
}

/* The SET commands are _IOW: the driver reads the argument, never writes it. */
static void vser_ioctl_set_only_reads_its_argument(struct kunit *test)
{
	const struct vser_frame frame = { 7, VSER_PARITY_ODD, 2, 0 };
	struct vser_ctx *ctx = test->priv;
	const u32 baud = 19200;
	struct vser_frame got;
	u32 got_baud;
	/* Read-only pages: a driver that writes back gets -EFAULT. */
	void __user *ro_baud = kdkit_umem_alloc_ro(test, &baud, sizeof(baud));
	void __user *ro_frame = kdkit_umem_alloc_ro(test, &frame, sizeof(frame));

	KDKIT_EXPECT_IOCTL(test, ctx->port[0], VSER_SET_BAUD, ro_baud, 0);
	KDKIT_EXPECT_IOCTL(test, ctx->port[0], VSER_SET_FRAME, ro_frame, 0);
	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_GET_BAUD, ctx->ubuf, 0);
	KUNIT_ASSERT_EQ(test, copy_from_user(&got_baud, ctx->ubuf, sizeof(got_baud)), 0);
	KUNIT_EXPECT_EQ(test, got_baud, baud);
	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_GET_FRAME, ctx->ubuf, 0);
	KUNIT_ASSERT_EQ(test, copy_from_user(&got, ctx->ubuf, sizeof(got)), 0);
	KUNIT_EXPECT_EQ(test, memcmp(&got, &frame, sizeof(frame)), 0);
}

static void vser_ioctl_invalid_values_return_einval(struct kunit *test)
{
	static const struct vser_frame bad_frames[] = {
		{ 4, VSER_PARITY_NONE, 1, 0 }, { 9, VSER_PARITY_NONE, 1, 0 },
		{ 8, 3, 1, 0 }, { 8, VSER_PARITY_NONE, 0, 0 },
		{ 8, VSER_PARITY_NONE, 3, 0 }, { 8, VSER_PARITY_NONE, 1, 1 },
	};
	/* Only the header's rates: not a range, a multiple or a divisor. */
	static const u32 bad_bauds[] = {
		0, 300, 600, 1800, 3600, 7200, 12345, 14400, 28800, 76800, 115201,
		230400, U32_MAX,
	};
	struct vser_ctx *ctx = test->priv;
	int i;

	for (i = 0; i < ARRAY_SIZE(bad_bauds); i++) {
		KUNIT_ASSERT_EQ(test, copy_to_user(ctx->ubuf, &bad_bauds[i], sizeof(u32)), 0);
		if (!KDKIT_EXPECT_IOCTL(test, ctx->port[0], VSER_SET_BAUD, ctx->ubuf, -EINVAL))
			kunit_info(test, "that was baud %u", bad_bauds[i]);
	}
	for (i = 0; i < ARRAY_SIZE(bad_frames); i++) {
		KUNIT_ASSERT_EQ(test, copy_to_user(ctx->ubuf, &bad_frames[i],
						   sizeof(bad_frames[i])), 0);
		if (!KDKIT_EXPECT_IOCTL(test, ctx->port[0], VSER_SET_FRAME, ctx->ubuf, -EINVAL))
			kunit_info(test, "that was bad frame %d", i);
	}
}

static void vser_ioctl_bad_pointer_returns_efault(struct kunit *test)
{
	struct vser_ctx *ctx = test->priv;
	void __user *bad = (void __user *)1;

	KDKIT_EXPECT_IOCTL(test, ctx->port[0], VSER_GET_BAUD, bad, -EFAULT);
	KDKIT_EXPECT_IOCTL(test, ctx->port[0], VSER_SET_BAUD, bad, -EFAULT);
	KDKIT_EXPECT_IOCTL(test, ctx->port[0], VSER_GET_FRAME, bad, -EFAULT);
	KDKIT_EXPECT_IOCTL(test, ctx->port[0], VSER_SET_FRAME, bad, -EFAULT);
}

static void vser_ioctl_unknown_command_returns_enotty(struct kunit *test)
{
	struct vser_ctx *ctx = test->priv;

	KDKIT_EXPECT_IOCTL(test, ctx->port[0], _IO(VSER_IOC_MAGIC, 99), ctx->ubuf, -ENOTTY);
	KDKIT_EXPECT_IOCTL(test, ctx->port[0], _IOR('x', 0, __u32), ctx->ubuf, -ENOTTY);
	/* VSER_GET_BAUD's number with another size is another command. */
	KDKIT_EXPECT_IOCTL(test, ctx->port[0], _IOR(VSER_IOC_MAGIC, 0, __u64), ctx->ubuf, -ENOTTY);
	/* Unknown comes first: the argument of an unknown command means nothing. */
	KDKIT_EXPECT_IOCTL(test, ctx->port[0], _IO(VSER_IOC_MAGIC, 99), (void __user *)1, -ENOTTY);
}

/* A refused SET changes nothing: the port keeps the value set before. */
static void vser_ioctl_refused_set_keeps_the_old_value(struct kunit *test)
{
	struct vser_ctx *ctx = test->priv;
	struct vser_frame frame = { 7, VSER_PARITY_ODD, 2, 0 }, bad = { 9, VSER_PARITY_NONE, 1, 0 };
	struct vser_frame got;
	u32 baud = 2400;

	KUNIT_ASSERT_EQ(test, copy_to_user(ctx->ubuf, &baud, sizeof(baud)), 0);
	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_SET_BAUD, ctx->ubuf, 0);
	baud = 2401;
	KUNIT_ASSERT_EQ(test, copy_to_user(ctx->ubuf, &baud, sizeof(baud)), 0);
	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_SET_BAUD, ctx->ubuf, -EINVAL);
	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_GET_BAUD, ctx->ubuf, 0);
	KUNIT_ASSERT_EQ(test, copy_from_user(&baud, ctx->ubuf, sizeof(baud)), 0);
	KUNIT_EXPECT_EQ_MSG(test, baud, 2400U, "after a refused VSER_SET_BAUD of 2401");

	KUNIT_ASSERT_EQ(test, copy_to_user(ctx->ubuf, &frame, sizeof(frame)), 0);
	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_SET_FRAME, ctx->ubuf, 0);
	KUNIT_ASSERT_EQ(test, copy_to_user(ctx->ubuf, &bad, sizeof(bad)), 0);
	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_SET_FRAME, ctx->ubuf, -EINVAL);
	KDKIT_ASSERT_IOCTL(test, ctx->port[0], VSER_GET_FRAME, ctx->ubuf, 0);
	KUNIT_ASSERT_EQ(test, copy_from_user(&got, ctx->ubuf, sizeof(got)), 0);
	KUNIT_EXPECT_EQ_MSG(test, memcmp(&got, &frame, sizeof(frame)), 0,
			    "after a refused VSER_SET_FRAME: %u data bits, parity %u, %u stop bits",
			    got.data_bits, got.parity, got.stop_bits);
}

/*
 * file_operations.owner = THIS_MODULE: the kernel holds the module while
 * a port is open, so that it cannot be unloaded under an open file.
 */
static void vser_open_port_holds_the_module(struct kunit *test)
{
	struct file *f = ((struct vser_ctx *)test->priv)->port[0];

	KUNIT_EXPECT_PTR_EQ_MSG(test, f->f_op->owner, kdkit_driver_module(),
				"vser's file_operations have no .owner = THIS_MODULE");
}

static void vser_read_bad_pointer_returns_efault(struct kunit *test)
{
	struct file *f = ((struct vser_ctx *)test->priv)->port[0];

	KUNIT_ASSERT_EQ(test, vser_write(test, 0, "data", 4), 4);
	KUNIT_EXPECT_EQ(test, f->f_op->read(f, (char __user *)1, 4, &f->f_pos), -EFAULT);
}

static void vser_write_bad_pointer_returns_efault(struct kunit *test)
{
	struct file *f = ((struct vser_ctx *)test->priv)->port[0];

	KUNIT_EXPECT_EQ(test, f->f_op->write(f, (const char __user *)1, 4, &f->f_pos), -EFAULT);
	/* Nothing was taken in. */
	KUNIT_EXPECT_EQ(test, vser_read(test, 0, 4), -EAGAIN);
}

/*
 * Two reads (or two writes) of one byte at once, on port 0, with one
 * byte (or one free byte) between them. Whatever instruction of read()
 * (or write()) the first is stopped at when the second comes, one of
 * them moves the byte and the other gets -EAGAIN. A lock dropped before
 * the copy lets both past the check, and one moves nothing.
 */
struct at_once {
	struct file *port;
	char __user *buf[2];
	ssize_t ret[2];
	bool write;
};

static void at_once_run(struct at_once *a, unsigned int i)
{
	if (a->write)
		a->ret[i] = a->port->f_op->write(a->port, a->buf[i], 1, &(loff_t){ 0 });
	else
		a->ret[i] = a->port->f_op->read(a->port, a->buf[i], 1, &(loff_t){ 0 });
}

static void at_once_first(void *data)
{
	at_once_run(data, 0);
}

static void at_once_second(void *data)
{
	at_once_run(data, 1);
}

/* One byte in the FIFO for two reads, or one free byte for two writes. */
static bool at_once_reset(struct kunit *test, struct at_once *a)
{
	static const char fill[VSER_DEFAULT_FIFO_SIZE];
	struct vser_ctx *ctx = test->priv;
	size_t n = a->write ? sizeof(fill) - 1 : 1;

	while (a->port->f_op->read(a->port, ctx->ubuf, BUF_SIZE, &(loff_t){ 0 }) > 0)
		;
	if (copy_to_user(ctx->ubuf, fill, n) ||
	    a->port->f_op->write(a->port, ctx->ubuf, n, &(loff_t){ 0 }) != n) {
		KUNIT_FAIL(test, "cannot leave %zu bytes in the FIFO for the next round", n);
		return false;
	}
	return true;
}

/* Called between rounds, with kprobes set: it must not abort the case. */
static bool at_once_check(struct kunit *test, void *data, const void *stopped_at)
{
	struct at_once *a = data;
	const char *what = a->write ? "writes at once with room for one byte" :
				      "reads at once with one byte in the FIFO";
	bool one = (a->ret[0] == 1 && a->ret[1] == -EAGAIN) ||
		   (a->ret[0] == -EAGAIN && a->ret[1] == 1);

	KUNIT_EXPECT_TRUE_MSG(test, one,
			      "two 1-byte %s, the first stopped at %pS while the second ran: they returned %zd and %zd, expected 1 and -EAGAIN",
			      what, stopped_at, a->ret[0], a->ret[1]);
	return one && at_once_reset(test, a);
}

static void at_once(struct kunit *test, bool write)
{
	struct vser_ctx *ctx = test->priv;
	struct at_once a = {
		.port = ctx->port[0],
		.buf = { ctx->ubuf, ctx->ubuf + BUF_SIZE / 2 },
		.write = write,
	};
	struct kdkit_interleave il = {
		.fn = write ? (void *)a.port->f_op->write : (void *)a.port->f_op->read,
		.first = at_once_first,
		.second = at_once_second,
		.check = at_once_check,
		.data = &a,
		.mm = current->mm,
	};

	KUNIT_ASSERT_TRUE(test, at_once_reset(test, &a));
	kdkit_interleave(test, &il);
}

static void vser_two_reads_at_once_take_one_byte_once(struct kunit *test)
{
	at_once(test, false);
}

static void vser_two_writes_at_once_fill_one_space_once(struct kunit *test)
{
	at_once(test, true);
}

/*
 * A write wakes readers and sends SIGIO only for bytes it has put in the
 * FIFO: a reader woken or signalled earlier finds nothing, and a woken
 * reader may sleep again for good, a signalled one give up. Kprobes on
 * the two ways to notify count the writer's calls.
 */
static struct {
	struct task_struct *writer;
	atomic_t calls;
} notify_watch;

static int notify_seen(struct kprobe *p, struct pt_regs *regs)
{
	if (current == READ_ONCE(notify_watch.writer))
		atomic_inc(&notify_watch.calls);
	return 0;
}

static const char *const notify_functions[] = { "kill_fasync", "__wake_up" };

/* Count the notifications @writer makes until notify_unwatch(). */
static bool notify_watch_on(struct kunit *test, struct kprobe *kp, struct kprobe **kps,
			    struct task_struct *writer)
{
	unsigned int i;

	WRITE_ONCE(notify_watch.writer, writer);
	atomic_set(&notify_watch.calls, 0);
	for (i = 0; i < ARRAY_SIZE(notify_functions); i++) {
		kp[i] = (struct kprobe){ .symbol_name = notify_functions[i],
					 .pre_handler = notify_seen };
		kps[i] = &kp[i];
	}
	if (register_kprobes(kps, ARRAY_SIZE(notify_functions))) {
		KUNIT_FAIL(test, "cannot probe kill_fasync() and __wake_up()");
		return false;
	}
	return true;
}

static void notify_watch_off(struct kprobe **kps)
{
	unregister_kprobes(kps, ARRAY_SIZE(notify_functions));
	WRITE_ONCE(notify_watch.writer, NULL);
}

static void vser_failed_write_notifies_no_one(struct kunit *test)
{
	struct file *f = ((struct vser_ctx *)test->priv)->port[0];
	struct kprobe kp[ARRAY_SIZE(notify_functions)], *kps[ARRAY_SIZE(notify_functions)];
	ssize_t ret;

	KUNIT_ASSERT_TRUE(test, notify_watch_on(test, kp, kps, current));
	ret = f->f_op->write(f, (const char __user *)1, 4, &f->f_pos);
	notify_watch_off(kps);
	KUNIT_EXPECT_EQ(test, ret, -EFAULT);
	KUNIT_EXPECT_EQ_MSG(test, atomic_read(&notify_watch.calls), 0,
			    "a write that copied nothing woke readers or sent SIGIO: notify only for bytes taken in");
}

/*
 * A 1-byte write into an empty port (the first thread) is stopped at each
 * of its instructions while a read (the second) runs: if the write had
 * already notified, the read must find the byte.
 */
struct notify_order {
	struct file *port;
	char __user *buf[2];
	ssize_t ret[2];
	int calls_then;		/* the writer's notifications when the read ran */
};

static void notify_order_first(void *data)
{
	struct notify_order *n = data;

	WRITE_ONCE(notify_watch.writer, current);
	n->ret[0] = n->port->f_op->write(n->port, n->buf[0], 1, &(loff_t){ 0 });
	WRITE_ONCE(notify_watch.writer, NULL);
}

static void notify_order_second(void *data)
{
	struct notify_order *n = data;

	n->calls_then = atomic_read(&notify_watch.calls);
	n->ret[1] = n->port->f_op->read(n->port, n->buf[1], 1, &(loff_t){ 0 });
}

static bool notify_order_reset(struct notify_order *n)
{
	while (n->port->f_op->read(n->port, n->buf[1], 1, &(loff_t){ 0 }) > 0)
		;
	atomic_set(&notify_watch.calls, 0);
	return true;
}

/* Called between rounds, with kprobes set: it must not abort the case. */
static bool notify_order_check(struct kunit *test, void *data, const void *stopped_at)
{
	struct notify_order *n = data;
	bool ok = !n->calls_then || n->ret[1] == 1;

	KUNIT_EXPECT_TRUE_MSG(test, ok,
			      "the write woke readers or sent SIGIO before its byte was in the FIFO (stopped at %pS): a read then returned %zd; put the data in first",
			      stopped_at, n->ret[1]);
	return ok && notify_order_reset(n);
}

static void vser_write_notifies_after_the_data(struct kunit *test)
{
	struct vser_ctx *ctx = test->priv;
	struct kprobe kp[ARRAY_SIZE(notify_functions)], *kps[ARRAY_SIZE(notify_functions)];
	struct notify_order n = {
		.port = ctx->port[0],
		.buf = { ctx->ubuf, ctx->ubuf + BUF_SIZE / 2 },
	};
	struct kdkit_interleave il = {
		.fn = (void *)n.port->f_op->write,
		.first = notify_order_first,
		.second = notify_order_second,
		.check = notify_order_check,
		.data = &n,
		.mm = current->mm,
	};

	KUNIT_ASSERT_EQ(test, copy_to_user(n.buf[0], "n", 1), 0UL);
	notify_order_reset(&n);
	KUNIT_ASSERT_TRUE(test, notify_watch_on(test, kp, kps, NULL));
	kdkit_interleave(test, &il);
	notify_watch_off(kps);
}

static struct kunit_case vser_fops_cases[] = {
	KUNIT_CASE(vser_read_returns_what_was_written),
	KUNIT_CASE(vser_read_empty_nonblocking_returns_eagain),
	KUNIT_CASE(vser_write_full_nonblocking_returns_eagain),
	KUNIT_CASE(vser_write_beyond_room_moves_what_fits),
	KUNIT_CASE(vser_read_short_leaves_the_rest),
	KUNIT_CASE(vser_poll_reports_readable_and_writable),
	KUNIT_CASE(vser_ports_are_independent),
	KUNIT_CASE(vser_ioctl_baud_round_trips),
	KUNIT_CASE(vser_ioctl_frame_round_trips),
	KUNIT_CASE(vser_ioctl_set_only_reads_its_argument),
	KUNIT_CASE(vser_ioctl_invalid_values_return_einval),
	KUNIT_CASE(vser_ioctl_bad_pointer_returns_efault),
	KUNIT_CASE(vser_ioctl_unknown_command_returns_enotty),
	KUNIT_CASE(vser_ioctl_refused_set_keeps_the_old_value),
	KUNIT_CASE(vser_open_port_holds_the_module),
	KUNIT_CASE(vser_read_bad_pointer_returns_efault),
	KUNIT_CASE(vser_write_bad_pointer_returns_efault),
	KUNIT_CASE(vser_failed_write_notifies_no_one),
	KUNIT_CASE(vser_two_reads_at_once_take_one_byte_once),
	KUNIT_CASE(vser_two_writes_at_once_fill_one_space_once),
	KUNIT_CASE(vser_write_notifies_after_the_data),
	{}
};

static struct kunit_suite vser_fops_suite = {
	.name = "vser_fops",
	.init = vser_fops_init,
	.exit = vser_fops_exit,
	.test_cases = vser_fops_cases,
};

kunit_test_suite(vser_fops_suite);

MODULE_LICENSE("GPL");
