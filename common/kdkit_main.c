// SPDX-License-Identifier: GPL-2.0
/*
 * kdkit.ko - the kit's helper module, loaded before any lab module. This
 * file is its core; the sweep, the leak accounting and user memory for
 * tests have a file each.
 *
 * It watches each module that carries KUnit suites, and does three things:
 *
 * - It drops the suites and cases that the "only" parameter does not name.
 *   KUnit in 6.1 runs every suite of a module on load and has no filter for
 *   modules; after a test crashes the kernel, the harness boots again and
 *   must run only what has not run yet.
 *
 * - It takes the module's init and exit away from the loader and keeps them
 *   for kdkit_driver_init()/kdkit_driver_exit(). The student's driver then
 *   runs only inside test cases, and a failing init cannot abort the load
 *   (which would discard the suites' results with the module).
 *
 * - It runs the suites itself once the module is live. KUnit would run
 *   them at MODULE_STATE_COMING, before the module has its sysfs kobject,
 *   and a driver registered then warns in module_add_driver().
 */
#include <linux/device.h>
#include <linux/jhash.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/namei.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <kunit/test.h>
#include "kdkit.h"

/* Space-separated selectors: "suite" or "suite.case"; empty runs all. */
static char only[1024];
module_param_string(only, only, sizeof(only), 0644);
MODULE_PARM_DESC(only, "suites or suite.case names to run (default: all)");

/* The entry points of the test module being loaded; modules load one by one. */
static struct module *driver_mod;
static int (*student_init)(void);
static void (*student_exit)(void);
static struct kunit_suite **driver_suites;
static int driver_nr_suites;
static bool driver_suites_ran;
static u32 driver_tests_hash;

int kdkit_driver_init(void)
{
	return driver_mod && student_init ? student_init() : 0;
}
EXPORT_SYMBOL_GPL(kdkit_driver_init);

struct module *kdkit_driver_module(void)
{
	return driver_mod;
}
EXPORT_SYMBOL_GPL(kdkit_driver_module);

bool kdkit_driver_bound(struct device *dev)
{
	struct device_driver *drv = READ_ONCE(dev->driver);

	return drv && driver_mod && drv->owner == driver_mod;
}
EXPORT_SYMBOL_GPL(kdkit_driver_bound);

/*
 * What the last probe of a platform device returned: a test that finds
 * its device unbound says why. platform_probe() is the platform bus's
 * probe, which calls the driver's.
 */
static struct device *probed_dev;
static int probed_ret;

static int kdkit_probe_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	*(struct device **)ri->data = (struct device *)regs_get_kernel_argument(regs, 0);
	return 0;
}

static int kdkit_probe_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	WRITE_ONCE(probed_ret, (int)regs_return_value(regs));
	WRITE_ONCE(probed_dev, *(struct device **)ri->data);
	return 0;
}

static struct kretprobe kdkit_probe_rp = {
	.kp.symbol_name = "platform_probe",
	.entry_handler = kdkit_probe_entry,
	.handler = kdkit_probe_return,
	.data_size = sizeof(struct device *),
	.maxactive = 4,
};

int kdkit_probe_error(struct device *dev)
{
	if (READ_ONCE(probed_dev) != dev || READ_ONCE(probed_ret) >= 0)
		return -ENODEV;
	return READ_ONCE(probed_ret);
}
EXPORT_SYMBOL_GPL(kdkit_probe_error);

struct device_driver *kdkit_driver_init_bound(struct kunit *test, struct device *dev,
					      bool *loaded)
{
	int ret = kdkit_driver_init();

	KUNIT_ASSERT_EQ_MSG(test, ret, 0, "module init returned %d", ret);
	*loaded = true;
	KUNIT_ASSERT_TRUE_MSG(test, kdkit_driver_bound(dev),
			      "module init did not bind the %s device: its probe returned %d",
			      dev_name(dev), kdkit_probe_error(dev));
	return dev->driver;
}
EXPORT_SYMBOL_GPL(kdkit_driver_init_bound);

bool kdkit_path_exists(const char *name)
{
	struct path path;

	if (kern_path(name, 0, &path))
		return false;
	path_put(&path);
	return true;
}
EXPORT_SYMBOL_GPL(kdkit_path_exists);

void kdkit_driver_exit(void)
{
	if (!driver_mod)
		return;
	if (student_exit)
		student_exit();
	kdkit_left_check();
}
EXPORT_SYMBOL_GPL(kdkit_driver_exit);

/* Does one selector in @only name this suite, or this case of it? */
static bool kdkit_selected(const char *suite, const char *test)
{
	size_t slen = strlen(suite);
	const char *p = skip_spaces(only);

	while (*p) {
		size_t len = strcspn(p, "\n ");

		if (len == slen && !strncmp(p, suite, slen))
			return true;
		if (test && len == slen + 1 + strlen(test) &&
		    !strncmp(p, suite, slen) && p[slen] == '.' &&
		    !strncmp(p + slen + 1, test, len - slen - 1))
			return true;
		p = skip_spaces(p + len);
	}
	return false;
}

/* Keep the selected cases of @suite, in order; false if none is left. */
static bool kdkit_filter_cases(struct kunit_suite *suite)
{
	struct kunit_case *in, *out = suite->test_cases;

	if (kdkit_selected(suite->name, NULL))
		return true;
	for (in = suite->test_cases; in->run_case; in++)
		if (kdkit_selected(suite->name, in->name))
			*out++ = *in;
	memset(out, 0, sizeof(*out));
	return out != suite->test_cases;
}

/*
 * A hash of what the suites will run: each suite's hooks and each case's
 * function and name. The student's code is linked into the test module and
 * runs inside its cases; a driver that rewrote the cases after it (to make
 * them pass) changes this hash. KUnit's own writes (status, log) do not.
 */
static u32 kdkit_tests_hash(void)
{
	u32 hash = driver_nr_suites;
	struct kunit_case *c;
	int i;

	for (i = 0; i < driver_nr_suites; i++) {
		struct kunit_suite *suite = driver_suites[i];
		const void *hooks[] = { suite, suite->test_cases, suite->init, suite->exit,
					suite->suite_init, suite->suite_exit };

		hash = jhash(hooks, sizeof(hooks), hash);
		hash = jhash(suite->name, strnlen(suite->name, sizeof(suite->name)), hash);
		for (c = suite->test_cases; c->run_case; c++) {
			const void *entry[] = { c->run_case, c->name, c->generate_params };

			hash = jhash(entry, sizeof(entry), hash);
			hash = jhash(c->name, strlen(c->name), hash);
		}
	}
	return hash;
}

static void kdkit_coming(struct module *mod)
{
	int i, kept = 0;

	driver_mod = mod;
	kdkit_umem_loader(current->mm);
	student_init = mod->init;
	student_exit = mod->exit;
	mod->init = NULL;
	mod->exit = NULL;

	for (i = 0; i < mod->num_kunit_suites; i++)
		if (!*skip_spaces(only) || kdkit_filter_cases(mod->kunit_suites[i]))
			mod->kunit_suites[kept++] = mod->kunit_suites[i];
	/* Hidden from KUnit's notifier, which runs after this one. */
	driver_suites = mod->kunit_suites;
	driver_nr_suites = kept;
	mod->num_kunit_suites = 0;
	kdkit_switches_wrap(driver_suites, driver_nr_suites);
	driver_tests_hash = kdkit_tests_hash();
	kdkit_left_baseline();
}

static int kdkit_module_notify(struct notifier_block *nb, unsigned long state,
			       void *data)
{
	struct module *mod = data;

	switch (state) {
	case MODULE_STATE_COMING:
		if (mod->num_kunit_suites)
			kdkit_coming(mod);
		break;
	case MODULE_STATE_LIVE:
		if (mod == driver_mod) {
			/* In the loader's process, while the init text still exists. */
			__kunit_test_suites_init(driver_suites, driver_nr_suites);
			driver_suites_ran = true;
			if (kdkit_tests_hash() != driver_tests_hash)
				pr_err(KDKIT_TAMPERED "\n");
			student_init = NULL;	/* its init text is freed next */
			kdkit_umem_loader(NULL);
		}
		break;
	case MODULE_STATE_GOING:
		if (mod == driver_mod) {
			if (driver_suites_ran)
				__kunit_test_suites_exit(driver_suites, driver_nr_suites);
			driver_suites_ran = false;
			driver_mod = NULL;
		}
		break;
	}
	return NOTIFY_DONE;
}

/* Runs before KUnit's own notifier, which has priority 0. */
static struct notifier_block kdkit_module_nb = {
	.notifier_call = kdkit_module_notify,
	.priority = 1,
};

static int __init kdkit_init(void)
{
	int ret = kdkit_switches_init();

	if (ret)
		return ret;
	/* Without it a message only loses the probe's error code. */
	if (register_kretprobe(&kdkit_probe_rp))
		kdkit_probe_rp.kp.addr = NULL;
	ret = register_module_notifier(&kdkit_module_nb);
	if (ret) {
		if (kdkit_probe_rp.kp.addr)
			unregister_kretprobe(&kdkit_probe_rp);
		kdkit_switches_cleanup();
	}
	return ret;
}

static void __exit kdkit_exit(void)
{
	unregister_module_notifier(&kdkit_module_nb);
	if (kdkit_probe_rp.kp.addr)
		unregister_kretprobe(&kdkit_probe_rp);
	kdkit_switches_cleanup();
	kdkit_leak_cleanup();
	kdkit_fail_cleanup();
}

module_init(kdkit_init);
module_exit(kdkit_exit);
MODULE_DESCRIPTION("kdkit harness helpers: suite selection, driver entry points");
MODULE_LICENSE("GPL");
