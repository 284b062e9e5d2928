// SPDX-License-Identifier: GPL-2.0
/*
 * A fourth correct vser, for the kit's own tests: each port's cdev comes
 * from cdev_alloc(), and one that was never added is dropped with
 * kobject_put(), as fs/char_dev.c intends; once added, cdev_del() lets
 * it go. Otherwise the one-array alternative.
 */
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/kfifo.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include "vser_ioctl.h"

static unsigned int ndevs = VSER_DEFAULT_NDEVS;
module_param(ndevs, uint, 0444);
static unsigned int fifo_size = VSER_DEFAULT_FIFO_SIZE;
module_param(fifo_size, uint, 0444);

struct port {
	struct kfifo fifo;
	spinlock_t lock;	/* fifo and settings */
	struct mutex rd, wr;	/* one reader, one writer at a time */
	wait_queue_head_t wait;	/* readers and writers alike */
	struct fasync_struct *async;
	u32 baud;
	struct vser_frame frame;
	struct cdev *cdev;
};

static struct port *ports;
static unsigned int nports_up;
static int major;
static struct class *cls;

static int port_open(struct inode *inode, struct file *f)
{
	f->private_data = &ports[iminor(inode)];
	return nonseekable_open(inode, f);
}

static int port_fasync(int fd, struct file *f, int on)
{
	return fasync_helper(fd, f, on, &((struct port *)f->private_data)->async);
}

static int port_release(struct inode *inode, struct file *f)
{
	return port_fasync(-1, f, 0);
}

static unsigned int port_len(struct port *p)
{
	unsigned int n;

	spin_lock(&p->lock);
	n = kfifo_len(&p->fifo);
	spin_unlock(&p->lock);
	return n;
}

static ssize_t port_read(struct file *f, char __user *buf, size_t n, loff_t *pos)
{
	struct port *p = f->private_data;
	unsigned int got, i;
	char *tmp;

	if (!n)
		return 0;
	if (mutex_lock_interruptible(&p->rd))
		return -ERESTARTSYS;
	while (!port_len(p)) {
		mutex_unlock(&p->rd);
		if (f->f_flags & O_NONBLOCK)
			return -EAGAIN;
		if (wait_event_interruptible(p->wait, port_len(p)))
			return -ERESTARTSYS;
		if (mutex_lock_interruptible(&p->rd))
			return -ERESTARTSYS;
	}
	tmp = kmalloc(min_t(size_t, n, fifo_size), GFP_KERNEL);
	if (!tmp) {
		mutex_unlock(&p->rd);
		return -ENOMEM;
	}
	spin_lock(&p->lock);
	got = kfifo_out_peek(&p->fifo, tmp, min_t(size_t, n, fifo_size));
	spin_unlock(&p->lock);
	if (copy_to_user(buf, tmp, got)) {
		mutex_unlock(&p->rd);
		kfree(tmp);
		return -EFAULT;
	}
	kfree(tmp);
	spin_lock(&p->lock);
	for (i = 0; i < got; i++)	/* 6.1 has no kfifo_skip_count() */
		kfifo_skip(&p->fifo);
	spin_unlock(&p->lock);
	mutex_unlock(&p->rd);
	wake_up_interruptible(&p->wait);
	return got;
}

static ssize_t port_write(struct file *f, const char __user *buf, size_t n, loff_t *pos)
{
	struct port *p = f->private_data;
	unsigned int room, put;
	char *tmp;

	if (!n)
		return 0;
	if (mutex_lock_interruptible(&p->wr))
		return -ERESTARTSYS;
	while (port_len(p) == kfifo_size(&p->fifo)) {
		mutex_unlock(&p->wr);
		if (f->f_flags & O_NONBLOCK)
			return -EAGAIN;
		if (wait_event_interruptible(p->wait, port_len(p) < kfifo_size(&p->fifo)))
			return -ERESTARTSYS;
		if (mutex_lock_interruptible(&p->wr))
			return -ERESTARTSYS;
	}
	/* Only readers run beside us: the room can only grow. */
	room = kfifo_size(&p->fifo) - port_len(p);
	tmp = memdup_user(buf, min_t(size_t, n, room));
	if (IS_ERR(tmp)) {
		mutex_unlock(&p->wr);
		return PTR_ERR(tmp);
	}
	spin_lock(&p->lock);
	put = kfifo_in(&p->fifo, tmp, min_t(size_t, n, room));
	spin_unlock(&p->lock);
	mutex_unlock(&p->wr);
	kfree(tmp);
	wake_up_interruptible(&p->wait);
	kill_fasync(&p->async, SIGIO, POLL_IN);
	return put;
}

static __poll_t port_poll(struct file *f, poll_table *pt)
{
	struct port *p = f->private_data;
	unsigned int len;

	poll_wait(f, &p->wait, pt);
	len = port_len(p);
	return (len ? EPOLLIN | EPOLLRDNORM : 0) |
	       (len < kfifo_size(&p->fifo) ? EPOLLOUT | EPOLLWRNORM : 0);
}

static long port_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	static const u32 rates[] = VSER_BAUD_RATES;
	struct port *p = f->private_data;
	struct vser_frame fr;
	u32 baud;
	int i;

	if (_IOC_TYPE(cmd) != VSER_IOC_MAGIC)
		return -ENOTTY;
	switch (cmd) {
	case VSER_GET_BAUD:
		return put_user(READ_ONCE(p->baud), (u32 __user *)arg);
	case VSER_SET_BAUD:
		if (get_user(baud, (u32 __user *)arg))
			return -EFAULT;
		for (i = 0; i < ARRAY_SIZE(rates) && rates[i] != baud; i++)
			;
		if (i == ARRAY_SIZE(rates))
			return -EINVAL;
		WRITE_ONCE(p->baud, baud);
		return 0;
	case VSER_GET_FRAME:
		spin_lock(&p->lock);
		fr = p->frame;
		spin_unlock(&p->lock);
		return copy_to_user((void __user *)arg, &fr, sizeof(fr)) ? -EFAULT : 0;
	case VSER_SET_FRAME:
		if (copy_from_user(&fr, (void __user *)arg, sizeof(fr)))
			return -EFAULT;
		if (fr.data_bits < 5 || fr.data_bits > 8 || fr.parity > VSER_PARITY_EVEN ||
		    fr.stop_bits < 1 || fr.stop_bits > 2 || fr.reserved)
			return -EINVAL;
		spin_lock(&p->lock);
		p->frame = fr;
		spin_unlock(&p->lock);
		return 0;
	}
	return -ENOTTY;
}

static const struct file_operations port_fops = {
	.owner = THIS_MODULE,
	.open = port_open,
	.release = port_release,
	.read = port_read,
	.write = port_write,
	.poll = port_poll,
	.unlocked_ioctl = port_ioctl,
	.fasync = port_fasync,
	.llseek = no_llseek,
};

static void ports_down(void)
{
	while (nports_up) {
		struct port *p = &ports[--nports_up];

		device_destroy(cls, MKDEV(major, nports_up));
		cdev_del(p->cdev);
		kfifo_free(&p->fifo);
	}
}

static int port_up(unsigned int i)
{
	struct port *p = &ports[i];
	struct device *dev;
	int ret;

	p->cdev = cdev_alloc();
	if (!p->cdev)
		return -ENOMEM;
	p->cdev->ops = &port_fops;
	p->cdev->owner = THIS_MODULE;
	ret = kfifo_alloc(&p->fifo, fifo_size, GFP_KERNEL);
	if (ret)
		goto put_cdev;
	spin_lock_init(&p->lock);
	mutex_init(&p->rd);
	mutex_init(&p->wr);
	init_waitqueue_head(&p->wait);
	p->baud = VSER_DEFAULT_BAUD;
	p->frame = (struct vser_frame){ 8, VSER_PARITY_NONE, 1, 0 };
	ret = cdev_add(p->cdev, MKDEV(major, i), 1);
	if (ret)
		goto free_fifo;
	dev = device_create(cls, NULL, MKDEV(major, i), NULL, "vser%u", i);
	if (IS_ERR(dev)) {
		cdev_del(p->cdev);
		kfifo_free(&p->fifo);
		return PTR_ERR(dev);
	}
	nports_up++;
	return 0;

free_fifo:
	kfifo_free(&p->fifo);
put_cdev:
	kobject_put(&p->cdev->kobj);	/* never added: drop it */
	return ret;
}

static int __init alt_init(void)
{
	dev_t first;
	unsigned int i;
	int ret;

	if (!ndevs || ndevs > 8 || fifo_size < 16 || fifo_size > 65536)
		return -EINVAL;
	ports = kcalloc(ndevs, sizeof(*ports), GFP_KERNEL);
	if (!ports)
		return -ENOMEM;
	ret = alloc_chrdev_region(&first, 0, ndevs, "vser");
	if (ret)
		goto free_ports;
	major = MAJOR(first);
	cls = class_create(THIS_MODULE, "vser");
	ret = PTR_ERR_OR_ZERO(cls);
	if (ret)
		goto free_region;
	for (i = 0; i < ndevs; i++) {
		ret = port_up(i);
		if (ret) {
			ports_down();
			class_destroy(cls);
			goto free_region;
		}
	}
	return 0;

free_region:
	unregister_chrdev_region(first, ndevs);
free_ports:
	kfree(ports);
	return ret;
}

static void __exit alt_exit(void)
{
	ports_down();
	class_destroy(cls);
	unregister_chrdev_region(MKDEV(major, 0), ndevs);
	kfree(ports);
}

module_init(alt_init);
module_exit(alt_exit);
MODULE_DESCRIPTION("kdkit: an alternative correct vser, with cdev_alloc()");
MODULE_LICENSE("GPL");
