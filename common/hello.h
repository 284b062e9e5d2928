/* SPDX-License-Identifier: GPL-2.0 */
/* The hello lab's one function worth testing, shared with its tests. */
#ifndef HELLO_H
#define HELLO_H

#include <linux/types.h>

ssize_t hello_greet(char *buf, size_t size, const char *name);

#endif /* HELLO_H */
