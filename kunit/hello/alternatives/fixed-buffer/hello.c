// SPDX-License-Identifier: GPL-2.0
/*
 * A second correct hello, in another style, for the kit's own tests: any
 * module that honours hello.h and greets its parameter must pass the hello
 * suites. Here: the name is a fixed buffer (module_param_string()), the
 * greeting's length is worked out before it is written and cut short with
 * scnprintf(), and init allocates the greeting, so that a failed greeting
 * has something to give back.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include "hello.h"

#define GREETING "Hello, %s!"

static char whom[32] = "world";
module_param_string(whom, whom, sizeof(whom), 0444);
MODULE_PARM_DESC(whom, "who to greet (default: world)");

ssize_t hello_greet(char *buf, size_t size, const char *name)
{
	size_t want;

	if (!name || name[0] == '\0')
		return -EINVAL;
	want = strlen(name) + sizeof(GREETING) - 3;	/* less "%s" and the NUL */
	scnprintf(buf, size, GREETING, name);
	return want < size ? want : -ENOSPC;
}

static int __init hello_init(void)
{
	size_t size = strlen(whom) + sizeof(GREETING);
	char *greeting = kmalloc(size, GFP_KERNEL);
	ssize_t len;

	if (!greeting)
		return -ENOMEM;
	len = hello_greet(greeting, size, whom);
	if (len >= 0)
		pr_info("%s\n", greeting);
	kfree(greeting);
	return len < 0 ? len : 0;
}

static void __exit hello_exit(void)
{
	pr_info("Goodbye, %s!\n", whom);
}

module_init(hello_init);
module_exit(hello_exit);
MODULE_DESCRIPTION("kdkit lab 0: a first module, another way");
MODULE_LICENSE("GPL");
