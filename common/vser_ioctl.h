/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The vser lab's user API: ioctls for the settings of a virtual serial
 * port. Written as a uapi header, so that the driver, the KUnit suites and
 * the userspace tests in the VM all include this one file.
 */
#ifndef _UAPI_VSER_IOCTL_H
#define _UAPI_VSER_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* The device nodes are /dev/vser0, /dev/vser1, ... */
#define VSER_DEV_PREFIX		"/dev/vser"

/* Module parameter defaults: ndevs and fifo_size (bytes per device). */
#define VSER_DEFAULT_NDEVS	2
#define VSER_DEFAULT_FIFO_SIZE	64

#define VSER_PARITY_NONE	0
#define VSER_PARITY_ODD		1
#define VSER_PARITY_EVEN	2

/*
 * A frame: 5 to 8 data bits, a VSER_PARITY_* and 1 or 2 stop bits.
 * A port starts at VSER_DEFAULT_BAUD, 8 data bits, no parity, 1 stop bit.
 */
struct vser_frame {
	__u8 data_bits;
	__u8 parity;
	__u8 stop_bits;
	__u8 reserved;		/* must be 0 */
};

/* Baud rates a port accepts; anything else is -EINVAL. */
#define VSER_BAUD_RATES { 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200 }
#define VSER_DEFAULT_BAUD	115200

#define VSER_IOC_MAGIC		'v'
#define VSER_GET_BAUD		_IOR(VSER_IOC_MAGIC, 0, __u32)
#define VSER_SET_BAUD		_IOW(VSER_IOC_MAGIC, 1, __u32)
#define VSER_GET_FRAME		_IOR(VSER_IOC_MAGIC, 2, struct vser_frame)
#define VSER_SET_FRAME		_IOW(VSER_IOC_MAGIC, 3, struct vser_frame)

#endif /* _UAPI_VSER_IOCTL_H */
