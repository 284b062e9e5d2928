// SPDX-License-Identifier: GPL-2.0
/* KUnit cases for the hello module's entry points, run as insmod would. */
#include <linux/kmsg_dump.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/string.h>
#include <kunit/test.h>
#include "kdkit.h"

/*
 * The module's parameter @name, set to @value as insmod's name=value would;
 * @was gets its value before (a string, whatever the parameter's type).
 */
static void hello_set_param(struct kunit *test, const char *name, const char *value,
			    char *was)
{
	struct module *mod = kdkit_driver_module();
	const struct kernel_param *kp = NULL;
	unsigned int i;

	for (i = 0; i < mod->num_kp; i++)
		if (!strcmp(mod->kp[i].name, name))
			kp = &mod->kp[i];
	KUNIT_ASSERT_NOT_NULL_MSG(test, kp, "the module has no parameter '%s'", name);
	if (was)
		KUNIT_ASSERT_GT(test, kp->ops->get(was, kp), 0);
	KUNIT_ASSERT_EQ_MSG(test, kp->ops->set(value, kp), 0,
			    "setting %s=\"%s\" failed", name, value);
}

/* The kernel log's next record: where a later hello_logged() starts. */
static u64 hello_log_end(void)
{
	struct kmsg_dump_iter iter;

	kmsg_dump_rewind(&iter);
	return iter.next_seq;
}

/* Whether a record since @from holds @text. */
static bool hello_logged(u64 from, const char *text)
{
	struct kmsg_dump_iter iter;
	char line[256];
	size_t len;

	kmsg_dump_rewind(&iter);
	iter.cur_seq = max(iter.cur_seq, from);
	while (kmsg_dump_get_line(&iter, false, line, sizeof(line) - 1, &len)) {
		line[len] = '\0';
		if (strstr(line, text))
			return true;
	}
	return false;
}

static void hello_module_init_then_exit_succeeds(struct kunit *test)
{
	struct module *mod = kdkit_driver_module();
	int refs = module_refcount(mod);

	KUNIT_ASSERT_EQ(test, kdkit_driver_init(), 0);
	kdkit_driver_exit();
	/* A module that keeps a reference to itself can never be unloaded. */
	KUNIT_EXPECT_EQ_MSG(test, module_refcount(mod), refs,
			    "init and exit left the module's reference count changed");
}

static void hello_module_loads_twice(struct kunit *test)
{
	/* A second load after an unload finds nothing left over. */
	KUNIT_ASSERT_EQ(test, kdkit_driver_init(), 0);
	kdkit_driver_exit();
	KUNIT_ASSERT_EQ(test, kdkit_driver_init(), 0);
	kdkit_driver_exit();
}

static void hello_module_init_greets_whom(struct kunit *test)
{
	char *was = kunit_kzalloc(test, PAGE_SIZE, GFP_KERNEL);
	u64 from;

	KUNIT_ASSERT_NOT_NULL(test, was);
	hello_set_param(test, "whom", "Ada", was);
	from = hello_log_end();
	KUNIT_EXPECT_EQ(test, kdkit_driver_init(), 0);
	KUNIT_EXPECT_TRUE_MSG(test, hello_logged(from, "Hello, Ada!"),
			      "with whom=Ada, init did not log \"Hello, Ada!\"");
	kdkit_driver_exit();
	hello_set_param(test, "whom", strim(was), NULL);
}

static void hello_module_init_fails_when_the_greeting_fails(struct kunit *test)
{
	struct module *mod = kdkit_driver_module();
	int refs = module_refcount(mod);
	char *was = kunit_kzalloc(test, PAGE_SIZE, GFP_KERNEL);
	u64 from;
	int ret;

	KUNIT_ASSERT_NOT_NULL(test, was);
	/* An empty name: hello_greet() refuses it, and so must the load. */
	hello_set_param(test, "whom", "", was);
	from = hello_log_end();
	ret = kdkit_driver_init();
	KUNIT_EXPECT_LT_MSG(test, ret, 0,
			    "with whom=\"\", hello_greet() fails, yet init returned %d", ret);
	if (ret == 0)
		kdkit_driver_exit();
	KUNIT_EXPECT_FALSE_MSG(test, hello_logged(from, "Hello, !"),
			       "init logged a greeting of no one");
	KUNIT_EXPECT_EQ_MSG(test, module_refcount(mod), refs,
			    "a failed init left the module's reference count changed");
	hello_set_param(test, "whom", strim(was), NULL);
}

static struct kunit_case hello_module_cases[] = {
	KUNIT_CASE(hello_module_init_then_exit_succeeds),
	KUNIT_CASE(hello_module_loads_twice),
	KUNIT_CASE(hello_module_init_greets_whom),
	KUNIT_CASE(hello_module_init_fails_when_the_greeting_fails),
	{}
};

static struct kunit_suite hello_module_suite = {
	.name = "hello_module",
	.test_cases = hello_module_cases,
};

kunit_test_suite(hello_module_suite);

MODULE_LICENSE("GPL");
