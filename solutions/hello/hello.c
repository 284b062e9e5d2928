// SPDX-License-Identifier: GPL-2.0
/*
 * hello - a first module: a parameter, a function worth testing, and the
 * init and exit entry points that the kernel calls on insmod and rmmod.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/string.h>
#include "hello.h"

static char *whom = "world";
module_param(whom, charp, 0444);
MODULE_PARM_DESC(whom, "who to greet (default: world)");

/**
 * hello_greet() - write "Hello, <name>!" into a buffer
 * @buf: where the greeting goes, always NUL-terminated when @size > 0
 * @size: the size of @buf in bytes
 * @name: who to greet
 *
 * Return: the length of the greeting, -EINVAL if @name is NULL or empty,
 * or -ENOSPC if @buf was too small and the greeting was cut short.
 */
ssize_t hello_greet(char *buf, size_t size, const char *name)
{
	/* TODO 1: reject a NULL or empty name with -EINVAL */
	if (!name || !*name)
		return -EINVAL;
	/* END TODO 1 */

	/* TODO 2: format the greeting; report a short buffer with -ENOSPC */
	if (snprintf(buf, size, "Hello, %s!", name) >= size)
		return -ENOSPC;
	return strlen(buf);
	/* skel: return -EOPNOTSUPP; */
	/* END TODO 2 */
}

static int __init hello_init(void)
{
	/* TODO 3: greet whom in the kernel log; fail the load on an error */
	char greeting[64];
	ssize_t len = hello_greet(greeting, sizeof(greeting), whom);

	if (len < 0)
		return len;
	pr_info("%s\n", greeting);
	/* END TODO 3 */
	return 0;
}

static void __exit hello_exit(void)
{
	pr_info("Goodbye, %s!\n", whom);
}

module_init(hello_init);
module_exit(hello_exit);
MODULE_DESCRIPTION("kdkit lab 0: a first module");
MODULE_LICENSE("GPL");
