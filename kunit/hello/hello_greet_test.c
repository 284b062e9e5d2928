// SPDX-License-Identifier: GPL-2.0
/* KUnit cases for hello_greet(): the greeting, its errors, short buffers. */
#include <kunit/test.h>
#include "hello.h"

static void hello_greet_formats_name(struct kunit *test)
{
	char buf[32];

	KUNIT_EXPECT_EQ(test, hello_greet(buf, sizeof(buf), "Ada"), 11);
	KUNIT_EXPECT_STREQ(test, buf, "Hello, Ada!");
}

static void hello_greet_null_name_returns_einval(struct kunit *test)
{
	char buf[32];

	KUNIT_EXPECT_EQ(test, hello_greet(buf, sizeof(buf), NULL), -EINVAL);
}

static void hello_greet_empty_name_returns_einval(struct kunit *test)
{
	char buf[32];

	KUNIT_EXPECT_EQ(test, hello_greet(buf, sizeof(buf), ""), -EINVAL);
}

static void hello_greet_short_buffer_returns_enospc(struct kunit *test)
{
	char buf[8];

	KUNIT_EXPECT_EQ(test, hello_greet(buf, sizeof(buf), "Ada"), -ENOSPC);
	/* The cut-short greeting is still a terminated string. */
	KUNIT_EXPECT_STREQ(test, buf, "Hello, ");
}

static void hello_greet_exact_fit_succeeds(struct kunit *test)
{
	char buf[12];

	KUNIT_EXPECT_EQ(test, hello_greet(buf, sizeof(buf), "Ada"), 11);
	KUNIT_EXPECT_STREQ(test, buf, "Hello, Ada!");
}

static struct kunit_case hello_greet_cases[] = {
	KUNIT_CASE(hello_greet_formats_name),
	KUNIT_CASE(hello_greet_null_name_returns_einval),
	KUNIT_CASE(hello_greet_empty_name_returns_einval),
	KUNIT_CASE(hello_greet_short_buffer_returns_enospc),
	KUNIT_CASE(hello_greet_exact_fit_succeeds),
	{}
};

static struct kunit_suite hello_greet_suite = {
	.name = "hello_greet",
	.test_cases = hello_greet_cases,
};

kunit_test_suite(hello_greet_suite);

MODULE_LICENSE("GPL");
