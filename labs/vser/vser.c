// SPDX-License-Identifier: GPL-2.0
/*
 * vser - a virtual serial port: one loopback character device per minor.
 *
 * Each minor owns a kzalloc'd struct vser_dev whose kfifo holds what was
 * written to /dev/vserN until it is read back. Reads and writes block on an
 * empty or full FIFO unless the file is O_NONBLOCK. poll(), SIGIO through
 * fasync, and ioctls for the baud rate and frame format complete the port.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/kfifo.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include "vser_ioctl.h"

#define VSER_NAME	"vser"
#define VSER_MAX_NDEVS	8
#define VSER_MIN_FIFO	16
#define VSER_MAX_FIFO	65536

static unsigned int ndevs = VSER_DEFAULT_NDEVS;
module_param(ndevs, uint, 0444);
MODULE_PARM_DESC(ndevs, "number of ports, 1 to 8 (default 2)");

static unsigned int fifo_size = VSER_DEFAULT_FIFO_SIZE;
module_param(fifo_size, uint, 0444);
MODULE_PARM_DESC(fifo_size,
		 "FIFO bytes per port, 16 to 65536, rounded up to a power of two (default 64)");

struct vser_dev {
	struct kfifo fifo;
	struct mutex lock;		/* guards fifo, baud and frame */
	wait_queue_head_t read_wait;	/* readers wait here for data */
	wait_queue_head_t write_wait;	/* writers wait here for room */
	struct fasync_struct *fasync;	/* who gets SIGIO when data arrives */
	u32 baud;
	struct vser_frame frame;
	struct cdev cdev;
};

static dev_t vser_devt;
static struct class *vser_class;
static struct vser_dev *vser_devs[VSER_MAX_NDEVS];

static int vser_open(struct inode *inode, struct file *filp)
{
	filp->private_data = container_of(inode->i_cdev, struct vser_dev, cdev);
	return stream_open(inode, filp);
}

static int vser_fasync(int fd, struct file *filp, int on)
{
	/* TODO 1: add or remove this file from the SIGIO list */
	return -EOPNOTSUPP;
}

static int vser_release(struct inode *inode, struct file *filp)
{
	/* A closed file must not get SIGIO any more. */
	vser_fasync(-1, filp, 0);
	return 0;
}

static ssize_t vser_read(struct file *filp, char __user *buf, size_t count,
			 loff_t *ppos)
{
	/* TODO 2: wait for data (or -EAGAIN), move it to buf, wake writers */
	return -EOPNOTSUPP;
}

static ssize_t vser_write(struct file *filp, const char __user *buf,
			  size_t count, loff_t *ppos)
{
	/* TODO 3: wait for room (or -EAGAIN), take buf, wake readers, SIGIO */
	return -EOPNOTSUPP;
}

static __poll_t vser_poll(struct file *filp, struct poll_table_struct *wait)
{
	/* TODO 4: register both wait queues; report readable and writable */
	return 0;
}

/* TODO 5: accept only the baud rates and frames that vser_ioctl.h allows */

static long vser_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	/* TODO 6: get and set baud and frame; -EINVAL, -EFAULT, -ENOTTY */
	return -ENOTTY;
}

static const struct file_operations vser_fops = {
	.owner = THIS_MODULE,
	.open = vser_open,
	.release = vser_release,
	.read = vser_read,
	.write = vser_write,
	.poll = vser_poll,
	.unlocked_ioctl = vser_ioctl,
	.fasync = vser_fasync,
	.llseek = no_llseek,
};

/* Bring up one port: its state, its FIFO, its cdev and its /dev node. */
static int vser_create(unsigned int minor)
{
	/* TODO 7: allocate and initialise the port's state and its FIFO */
	return -EOPNOTSUPP;

	/* TODO 8: add the cdev, then its device node; unwind on failure */

	/* TODO 9: undo, in reverse order, what was done before the failure */
}

/* Tear down one port, in the reverse order of vser_create(). */
static void vser_destroy(unsigned int minor)
{
	/* TODO 10: remove the node and the cdev, then free the FIFO and state */
	vser_devs[minor] = NULL;
}

static int __init vser_init(void)
{
	unsigned int minor;
	int ret;

	if (!ndevs || ndevs > VSER_MAX_NDEVS ||
	    fifo_size < VSER_MIN_FIFO || fifo_size > VSER_MAX_FIFO) {
		pr_err("ndevs must be 1 to %d and fifo_size %d to %d\n",
		       VSER_MAX_NDEVS, VSER_MIN_FIFO, VSER_MAX_FIFO);
		return -EINVAL;
	}

	ret = alloc_chrdev_region(&vser_devt, 0, ndevs, VSER_NAME);
	if (ret)
		return ret;

	vser_class = class_create(THIS_MODULE, VSER_NAME);
	if (IS_ERR(vser_class)) {
		ret = PTR_ERR(vser_class);
		goto err_unregister_region;
	}

	for (minor = 0; minor < ndevs; minor++) {
		ret = vser_create(minor);
		if (ret)
			goto err_destroy_ports;
	}
	return 0;

err_destroy_ports:
	while (minor--)
		vser_destroy(minor);
	class_destroy(vser_class);
err_unregister_region:
	unregister_chrdev_region(vser_devt, ndevs);
	return ret;
}

static void __exit vser_exit(void)
{
	unsigned int minor = ndevs;

	while (minor--)
		vser_destroy(minor);
	class_destroy(vser_class);
	unregister_chrdev_region(vser_devt, ndevs);
}

module_init(vser_init);
module_exit(vser_exit);
MODULE_DESCRIPTION("kdkit lab 1: a virtual serial port with a kfifo per minor");
MODULE_LICENSE("GPL");
