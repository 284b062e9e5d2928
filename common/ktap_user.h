/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A tiny KTAP writer for the userspace tests that run inside the VM: what
 * only a real process can show (blocking, signals, SIGIO). Its output has
 * the shape of KUnit's debugfs results, so the host parses both the same
 * way. Each case runs in a child process with a time limit, so a case that
 * hangs or crashes costs only itself.
 *
 *	static void my_case(void) { EXPECT(1 + 1 == 2, "math"); }
 *	static const struct ucase cases[] = { UCASE(my_case), {} };
 *	int main(void) { return ktap_run("my_suite", cases); }
 *
 * KDKIT_ONLY in the environment holds the "suite" or "suite.case" names to
 * run, as for the KUnit suites.
 */
#ifndef KTAP_USER_H
#define KTAP_USER_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define UCASE_TIME_LIMIT	5	/* seconds */

struct ucase {
	const char *name;
	void (*run)(void);
};

#define UCASE(fn) { #fn, fn }

static const char *ucase_name;
static int ucase_failed;

/* Read /proc/PID/stat's command, state and parent; 0 if it is gone. */
static int ktap_stat(pid_t pid, char *comm, char *state, pid_t *ppid)
{
	char path[64];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fscanf(f, "%*d (%63[^)]) %c %d", comm, state, ppid);
	fclose(f);
	return n == 3;
}

static int ktap_descends(pid_t pid, pid_t root)
{
	char comm[64], state;

	while (pid > 1 && pid != root)
		if (!ktap_stat(pid, comm, &state, &pid))
			return 0;
	return pid == root;
}

/*
 * Before a case is killed for time, say where it waits: the kernel stack
 * of each of its processes, and of every task blocked uninterruptibly
 * (the hung-task detector would only speak after 15 s).
 */
static void ktap_show_waits(const char *name, pid_t root)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;

	while (dir && (e = readdir(dir))) {
		pid_t pid = atoi(e->d_name), ppid;
		char comm[64], state, path[64], frame[256];
		FILE *f;

		if (pid <= 0 || !ktap_stat(pid, comm, &state, &ppid) ||
		    (state != 'D' && !ktap_descends(pid, root)))
			continue;
		printf("    # %s: %s %d (%s) waits in:\n", name,
		       state == 'D' ? "blocked task" : "its process", pid, comm);
		snprintf(path, sizeof(path), "/proc/%d/stack", pid);
		f = fopen(path, "r");
		/* Lines like "[<0>] vser_read+0x11e/0x1e3 [vser]". */
		while (f && fgets(frame, sizeof(frame), f)) {
			char *at = strchr(frame, ' ');

			printf("    # %s:   %s", name, at ? at + 1 : frame);
		}
		if (f)
			fclose(f);
	}
	if (dir)
		closedir(dir);
}

/* Report a failed expectation, KUnit style; the case goes on. */
#define EXPECT(cond, fmt, ...) ((void)ktap_expect(!!(cond), __FILE__, __LINE__,	\
						  fmt, ##__VA_ARGS__))

/* Like EXPECT, but a failure ends the case. */
#define ASSERT(cond, fmt, ...) do {					\
	if (!ktap_expect(!!(cond), __FILE__, __LINE__, fmt, ##__VA_ARGS__))	\
		exit(1);						\
} while (0)

/* Evaluates the condition once: it often has side effects, like write(). */
static int __attribute__((format(printf, 4, 5)))
ktap_expect(int ok, const char *file, int line, const char *fmt, ...)
{
	va_list args;

	if (ok)
		return 1;
	printf("    # %s: EXPECTATION FAILED at %s:%d\n    ", ucase_name, file, line);
	va_start(args, fmt);
	vprintf(fmt, args);
	va_end(args);
	printf("\n");
	ucase_failed = 1;
	return 0;
}

static int ktap_selected(const char *suite, const char *name)
{
	const char *only = getenv("KDKIT_ONLY");
	char want[256];
	const char *p;
	size_t n;

	if (!only || !only[strspn(only, " ")])
		return 1;
	for (p = only; *p; p += n) {
		p += strspn(p, " ");
		n = strcspn(p, " ");
		if (!n)
			break;
		snprintf(want, sizeof(want), "%.*s", (int)n, p);
		if (!strcmp(want, suite))
			return 1;
		if (!strncmp(want, suite, strlen(suite)) && want[strlen(suite)] == '.' &&
		    !strcmp(want + strlen(suite) + 1, name))
			return 1;
	}
	return 0;
}

/* Mirror progress into the kernel log, so a crashed run shows how far it got. */
static void ktap_kmsg(const char *line)
{
	FILE *k = fopen("/dev/kmsg", "w");

	if (k) {
		fprintf(k, "%s\n", line);
		fclose(k);
	}
}

static int ktap_run(const char *suite, const struct ucase *cases)
{
	int i, n = 0, num = 0, all_ok = 1;
	char line[256];

	for (i = 0; cases[i].name; i++)
		n += ktap_selected(suite, cases[i].name);
	printf("KTAP version 1\n1..1\n    KTAP version 1\n");
	printf("    # Subtest: %s\n    1..%d\n", suite, n);
	snprintf(line, sizeof(line), "    # Subtest: %s", suite);
	ktap_kmsg(line);
	fflush(stdout);
	for (i = 0; cases[i].name; i++) {
		int status = 0, t;
		pid_t pid;

		if (!ktap_selected(suite, cases[i].name))
			continue;
		pid = fork();
		if (pid == 0) {
			ucase_name = cases[i].name;
			cases[i].run();
			while (wait(NULL) > 0)
				;	/* helpers the case forked */
			fflush(stdout);
			_exit(ucase_failed);
		}
		/* The kit kernel has no POSIX timers (alarm): poll the child. */
		for (t = 0; waitpid(pid, &status, WNOHANG) == 0; t++) {
			if (t == UCASE_TIME_LIMIT * 100) {
				ktap_show_waits(cases[i].name, pid);
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				printf("    # %s: killed after %d s\n", cases[i].name,
				       UCASE_TIME_LIMIT);
				break;
			}
			usleep(10 * 1000);
		}
		if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
			printf("    # %s: killed by signal %d\n", cases[i].name, WTERMSIG(status));
		snprintf(line, sizeof(line), "    %s %d %s",
			 WIFEXITED(status) && !WEXITSTATUS(status) ? "ok" : "not ok",
			 ++num, cases[i].name);
		all_ok &= WIFEXITED(status) && !WEXITSTATUS(status);
		printf("%s\n", line);
		fflush(stdout);
		ktap_kmsg(line);
	}
	printf("%s 1 %s\n", all_ok ? "ok" : "not ok", suite);
	snprintf(line, sizeof(line), "%s 1 %s", all_ok ? "ok" : "not ok", suite);
	ktap_kmsg(line);
	return 0;
}

#endif /* KTAP_USER_H */
