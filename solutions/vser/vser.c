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
	struct vser_dev *vdev = filp->private_data;

	return fasync_helper(fd, filp, on, &vdev->fasync);
	/* skel: return -EOPNOTSUPP; */
	/* END TODO 1 */
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
	struct vser_dev *vdev = filp->private_data;
	unsigned int copied;
	int ret;

	if (mutex_lock_interruptible(&vdev->lock))
		return -ERESTARTSYS;
	while (kfifo_is_empty(&vdev->fifo)) {
		mutex_unlock(&vdev->lock);
		if (filp->f_flags & O_NONBLOCK)
			return -EAGAIN;
		if (wait_event_interruptible(vdev->read_wait,
					     !kfifo_is_empty(&vdev->fifo)))
			return -ERESTARTSYS;
		if (mutex_lock_interruptible(&vdev->lock))
			return -ERESTARTSYS;
	}
	ret = kfifo_to_user(&vdev->fifo, buf, count, &copied);
	mutex_unlock(&vdev->lock);
	if (ret)
		return ret;

	wake_up_interruptible(&vdev->write_wait);
	return copied;
	/* skel: return -EOPNOTSUPP; */
	/* END TODO 2 */
}

static ssize_t vser_write(struct file *filp, const char __user *buf,
			  size_t count, loff_t *ppos)
{
	/* TODO 3: wait for room (or -EAGAIN), take buf, wake readers, SIGIO */
	struct vser_dev *vdev = filp->private_data;
	unsigned int copied;
	int ret;

	if (mutex_lock_interruptible(&vdev->lock))
		return -ERESTARTSYS;
	while (kfifo_is_full(&vdev->fifo)) {
		mutex_unlock(&vdev->lock);
		if (filp->f_flags & O_NONBLOCK)
			return -EAGAIN;
		if (wait_event_interruptible(vdev->write_wait,
					     !kfifo_is_full(&vdev->fifo)))
			return -ERESTARTSYS;
		if (mutex_lock_interruptible(&vdev->lock))
			return -ERESTARTSYS;
	}
	ret = kfifo_from_user(&vdev->fifo, buf, count, &copied);
	mutex_unlock(&vdev->lock);
	if (ret)
		return ret;

	wake_up_interruptible(&vdev->read_wait);
	kill_fasync(&vdev->fasync, SIGIO, POLL_IN);
	return copied;
	/* skel: return -EOPNOTSUPP; */
	/* END TODO 3 */
}

static __poll_t vser_poll(struct file *filp, struct poll_table_struct *wait)
{
	/* TODO 4: register both wait queues; report readable and writable */
	struct vser_dev *vdev = filp->private_data;
	__poll_t mask = 0;

	poll_wait(filp, &vdev->read_wait, wait);
	poll_wait(filp, &vdev->write_wait, wait);

	mutex_lock(&vdev->lock);
	if (!kfifo_is_empty(&vdev->fifo))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (!kfifo_is_full(&vdev->fifo))
		mask |= EPOLLOUT | EPOLLWRNORM;
	mutex_unlock(&vdev->lock);
	return mask;
	/* skel: return 0; */
	/* END TODO 4 */
}

/* TODO 5: accept only the baud rates and frames that vser_ioctl.h allows */
static bool vser_baud_valid(u32 baud)
{
	static const u32 rates[] = VSER_BAUD_RATES;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(rates); i++)
		if (rates[i] == baud)
			return true;
	return false;
}

static bool vser_frame_valid(const struct vser_frame *frame)
{
	return frame->data_bits >= 5 && frame->data_bits <= 8 &&
	       frame->parity <= VSER_PARITY_EVEN &&
	       (frame->stop_bits == 1 || frame->stop_bits == 2) &&
	       !frame->reserved;
}

/* END TODO 5 */

static long vser_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	/* TODO 6: get and set baud and frame; -EINVAL, -EFAULT, -ENOTTY */
	struct vser_dev *vdev = filp->private_data;
	void __user *uarg = (void __user *)arg;
	struct vser_frame frame;
	u32 baud;

	switch (cmd) {
	case VSER_GET_BAUD:
		mutex_lock(&vdev->lock);
		baud = vdev->baud;
		mutex_unlock(&vdev->lock);
		return put_user(baud, (u32 __user *)uarg);
	case VSER_SET_BAUD:
		if (get_user(baud, (u32 __user *)uarg))
			return -EFAULT;
		if (!vser_baud_valid(baud))
			return -EINVAL;
		mutex_lock(&vdev->lock);
		vdev->baud = baud;
		mutex_unlock(&vdev->lock);
		return 0;
	case VSER_GET_FRAME:
		mutex_lock(&vdev->lock);
		frame = vdev->frame;
		mutex_unlock(&vdev->lock);
		if (copy_to_user(uarg, &frame, sizeof(frame)))
			return -EFAULT;
		return 0;
	case VSER_SET_FRAME:
		if (copy_from_user(&frame, uarg, sizeof(frame)))
			return -EFAULT;
		if (!vser_frame_valid(&frame))
			return -EINVAL;
		mutex_lock(&vdev->lock);
		vdev->frame = frame;
		mutex_unlock(&vdev->lock);
		return 0;
	default:
		return -ENOTTY;
	}
	/* skel: return -ENOTTY; */
	/* END TODO 6 */
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
	struct vser_dev *vdev;
	int ret;

	vdev = kzalloc(sizeof(*vdev), GFP_KERNEL);
	if (!vdev)
		return -ENOMEM;

	ret = kfifo_alloc(&vdev->fifo, fifo_size, GFP_KERNEL);
	if (ret)
		goto err_free_dev;

	mutex_init(&vdev->lock);
	init_waitqueue_head(&vdev->read_wait);
	init_waitqueue_head(&vdev->write_wait);
	vdev->baud = VSER_DEFAULT_BAUD;
	vdev->frame = (struct vser_frame){ 8, VSER_PARITY_NONE, 1, 0 };
	/* skel: return -EOPNOTSUPP; */
	/* END TODO 7 */

	/* TODO 8: add the cdev, then its device node; unwind on failure */
	cdev_init(&vdev->cdev, &vser_fops);
	vdev->cdev.owner = THIS_MODULE;
	ret = cdev_add(&vdev->cdev, vser_devt + minor, 1);
	if (ret)
		goto err_free_fifo;

	ret = PTR_ERR_OR_ZERO(device_create(vser_class, NULL, vser_devt + minor,
					    NULL, VSER_NAME "%u", minor));
	if (ret)
		goto err_del_cdev;

	vser_devs[minor] = vdev;
	return 0;
	/* END TODO 8 */

	/* TODO 9: undo, in reverse order, what was done before the failure */
err_del_cdev:
	cdev_del(&vdev->cdev);
err_free_fifo:
	kfifo_free(&vdev->fifo);
err_free_dev:
	kfree(vdev);
	return ret;
	/* END TODO 9 */
}

/* Tear down one port, in the reverse order of vser_create(). */
static void vser_destroy(unsigned int minor)
{
	/* TODO 10: remove the node and the cdev, then free the FIFO and state */
	struct vser_dev *vdev = vser_devs[minor];

	device_destroy(vser_class, vser_devt + minor);
	cdev_del(&vdev->cdev);
	kfifo_free(&vdev->fifo);
	kfree(vdev);
	/* END TODO 10 */
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
