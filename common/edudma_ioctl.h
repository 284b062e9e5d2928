/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The dma lab's user API. /dev/edudma moves bytes to and from the edu
 * device's buffer by DMA: write(2) sends them to the device, read(2)
 * fetches them back, both starting at the buffer's first byte. An ioctl
 * picks the kind of DMA memory the driver uses, so both can be tested.
 */
#ifndef _UAPI_EDUDMA_IOCTL_H
#define _UAPI_EDUDMA_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define EDUDMA_DEV		"/dev/edudma"

/*
 * The longest read or write; a longer one is refused with -EINVAL. edu's
 * buffer has 4096 bytes, but QEMU 7.2 stops the machine on a DMA that
 * reaches its last byte (an off-by-one, fixed in later QEMU releases).
 */
#define EDUDMA_MAX_XFER		4095

/* The paths: a coherent buffer, or a streaming mapping of kmalloc memory. */
#define EDUDMA_COHERENT		0
#define EDUDMA_STREAMING	1

#define EDUDMA_IOC_MAGIC	'e'
#define EDUDMA_SET_PATH		_IOW(EDUDMA_IOC_MAGIC, 0, __u32)
#define EDUDMA_GET_PATH		_IOR(EDUDMA_IOC_MAGIC, 1, __u32)

#endif /* _UAPI_EDUDMA_IOCTL_H */
