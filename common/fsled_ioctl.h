/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The fsled lab's user API: switch the FS4412's four LEDs on and off.
 * Written as a uapi header, so that the driver, the KUnit suites and
 * ledctl in the VM all include this one file.
 */
#ifndef _UAPI_FSLED_IOCTL_H
#define _UAPI_FSLED_IOCTL_H

#include <linux/ioctl.h>

/* One device node; one process at a time may hold it open. */
#define FSLED_DEV		"/dev/fsled"

/* The ioctl argument: an LED number, passed by value. */
#define FSLED_LED2		0
#define FSLED_LED3		1
#define FSLED_LED4		2
#define FSLED_LED5		3
#define FSLED_NR_LEDS		4

#define FSLED_IOC_MAGIC		'f'
#define FSLED_ON		_IOW(FSLED_IOC_MAGIC, 0, unsigned int)
#define FSLED_OFF		_IOW(FSLED_IOC_MAGIC, 1, unsigned int)

#endif /* _UAPI_FSLED_IOCTL_H */
