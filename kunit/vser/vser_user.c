// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace cases for vser, run in the VM with the student's vser.ko
 * loaded: what only a real process shows. Blocking reads and writes that a
 * second process wakes, a signal that interrupts a blocked read, SIGIO.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include "ktap_user.h"
#include "vser_ioctl.h"

#define PORT0 VSER_DEV_PREFIX "0"
#define PORT1 VSER_DEV_PREFIX "1"

/* Open a port, emptied of what earlier cases left in it. */
static int open_port(const char *path, int flags)
{
	int fd = open(path, O_RDWR | O_NONBLOCK);
	char buf[VSER_DEFAULT_FIFO_SIZE];

	ASSERT(fd >= 0, "open %s: %s", path, strerror(errno));
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	fd = open(path, flags);
	ASSERT(fd >= 0, "open %s: %s", path, strerror(errno));
	return fd;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void vser_user_nodes_are_char_devices(void)
{
	struct stat a, b;

	ASSERT(stat(PORT0, &a) == 0 && stat(PORT1, &b) == 0, "stat: %s", strerror(errno));
	EXPECT(S_ISCHR(a.st_mode) && S_ISCHR(b.st_mode), "the nodes are not char devices");
	EXPECT(major(a.st_rdev) == major(b.st_rdev) && minor(a.st_rdev) != minor(b.st_rdev),
	       "vser0 and vser1 should share a major and differ in minor");
}

static void vser_user_write_then_read(void)
{
	int fd = open_port(PORT0, O_RDWR);
	char buf[16] = "";

	EXPECT(write(fd, "ping", 4) == 4, "write: %s", strerror(errno));
	EXPECT(read(fd, buf, sizeof(buf)) == 4, "read: %s", strerror(errno));
	EXPECT(!memcmp(buf, "ping", 4), "read back '%.4s'", buf);
	close(fd);
}

static void vser_user_nonblocking_read_returns_eagain(void)
{
	int fd = open_port(PORT0, O_RDWR | O_NONBLOCK);
	char c;

	EXPECT(read(fd, &c, 1) == -1 && errno == EAGAIN, "read on empty gave %s", strerror(errno));
	close(fd);
}

/* In a child, read up to 16 bytes from @path; it exits with 100 + the count. */
static pid_t read_in_child(const char *path)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(path, O_RDONLY);
		char buf[16];
		ssize_t n = read(fd, buf, sizeof(buf));

		_exit(n < 0 ? 99 : 100 + (int)n);
	}
	return pid;
}

/* In a child, write one byte to @path; it exits with 100 + the count. */
static pid_t write_in_child(const char *path)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(path, O_WRONLY);
		ssize_t n = write(fd, "w", 1);

		_exit(n < 0 ? 99 : 100 + (int)n);
	}
	return pid;
}

/*
 * Wait up to @secs for @pid to sleep in system call @nr: its state S in
 * /proc/PID/stat, and @nr first in /proc/PID/syscall. This is the event
 * the cases wait for before they act: a process blocked in the driver.
 */
static int asleep_in(pid_t pid, long nr, double secs)
{
	double end = now() + secs;
	char path[64], state = 0;
	long call = -1;
	FILE *f;

	while (now() < end) {
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		f = fopen(path, "r");
		if (f && fscanf(f, "%*d %*s %c", &state) != 1)
			state = 0;
		if (f)
			fclose(f);
		snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
		f = fopen(path, "r");
		if (f && fscanf(f, "%ld", &call) != 1)
			call = -1;
		if (f)
			fclose(f);
		/* libc may make poll(2) of ppoll. */
		if (state == 'S' && (call == nr || (nr == SYS_poll && call == SYS_ppoll)))
			return 1;
		if (state == 'Z' || !state)
			return 0;
		usleep(2 * 1000);
	}
	return 0;
}

/* Whether @pid has exited within @secs; its exit code in *@code. */
static int exited(pid_t pid, double secs, int *code)
{
	double end = now() + secs;
	int status;

	do {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			*code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			return 1;
		}
		usleep(5 * 1000);
	} while (now() < end);
	return 0;
}

/*
 * Of two processes asleep in @p, one byte (of data, or of room) lets one
 * return: which one returns first, and then the other has a moment to
 * return too. It must have gone back to sleep, not returned 0 (which a
 * reader takes for the end of the file, and a writer for no progress).
 */
static void expect_one_of_two(pid_t p[2], const char *who)
{
	int code[2] = { 0, 0 }, done[2] = { 0, 0 }, i;
	double end = now() + 2;

	while (!done[0] && !done[1] && now() < end)
		for (i = 0; i < 2; i++)
			done[i] = exited(p[i], 0, &code[i]);
	for (i = 0; i < 2; i++)
		if (!done[i])
			done[i] = exited(p[i], 0.2, &code[i]);
	EXPECT(done[0] || done[1], "no %s returned after one byte was made ready", who);
	for (i = 0; i < 2; i++)
		EXPECT(!done[i] || code[i] == 101,
		       "a %s returned %d bytes (one byte was made ready; the other should sleep on)",
		       who, code[i] - 100);
	EXPECT(!(done[0] && done[1]), "both %ss returned for one byte", who);
	for (i = 0; i < 2; i++) {
		if (!done[i]) {
			kill(p[i], SIGKILL);
			waitpid(p[i], NULL, 0);
		}
	}
}

/* In a child, poll @path for @events; it exits with the events it got. */
static pid_t poll_in_child(const char *path, short events)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct pollfd p = { .fd = open(path, O_RDONLY), .events = events };

		/* Long: only a wake-up ends it in time. */
		_exit(poll(&p, 1, 10 * 1000) == 1 ? p.revents & events : 0);
	}
	return pid;
}

/* @pid's exit code within @secs, or -1 (and it is killed). */
static int exit_code(pid_t pid, double secs)
{
	int code;

	if (exited(pid, secs, &code))
		return code;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void vser_user_read_blocks_until_data(void)
{
	int fd = open_port(PORT0, O_RDWR);
	pid_t reader = read_in_child(PORT0);

	EXPECT(asleep_in(reader, SYS_read, 2), "a read of an empty port did not wait");
	EXPECT(write(fd, "late", 4) == 4, "write: %s", strerror(errno));
	EXPECT(exit_code(reader, 2) == 104, "the waiting read did not return the 4 bytes written");
	close(fd);
}

static void vser_user_write_blocks_until_room(void)
{
	int fd = open_port(PORT0, O_RDWR);
	char fill[VSER_DEFAULT_FIFO_SIZE];
	pid_t writer;

	memset(fill, 'x', sizeof(fill));
	ASSERT(write(fd, fill, sizeof(fill)) == sizeof(fill), "fill: %s", strerror(errno));
	writer = write_in_child(PORT0);
	EXPECT(asleep_in(writer, SYS_write, 2), "a write into a full FIFO did not wait");
	EXPECT(read(fd, fill, 8) == 8, "read: %s", strerror(errno));
	EXPECT(exit_code(writer, 2) == 101, "the waiting write did not go on once there was room");
	close(fd);
}

/*
 * poll(2) asks the driver once more when its timeout ends, so a poll that
 * no wake-up ended still reports the event then: the poller's timeout is
 * long, and it must return soon after the other side acts.
 */
#define WAKE_WITHIN	2.0	/* seconds */

static void vser_user_poll_wakes_on_data(void)
{
	int fd = open_port(PORT0, O_RDWR);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	pid_t poller;

	EXPECT(poll(&p, 1, 0) == 0, "an empty port polls readable");
	poller = poll_in_child(PORT0, POLLIN);
	EXPECT(asleep_in(poller, SYS_poll, 2), "poll on an empty port did not wait");
	EXPECT(write(fd, "x", 1) == 1, "write: %s", strerror(errno));
	EXPECT(exit_code(poller, WAKE_WITHIN) == POLLIN,
	       "poll did not wake on data: the write woke no poller");
	close(fd);
}

static void vser_user_poll_wakes_when_room_frees(void)
{
	int fd = open_port(PORT0, O_RDWR);
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	char fill[VSER_DEFAULT_FIFO_SIZE];
	pid_t poller;

	memset(fill, 'x', sizeof(fill));
	ASSERT(write(fd, fill, sizeof(fill)) == sizeof(fill), "fill: %s", strerror(errno));
	EXPECT(poll(&p, 1, 0) == 0, "a full port polls writable");
	poller = poll_in_child(PORT0, POLLOUT);
	EXPECT(asleep_in(poller, SYS_poll, 2), "poll on a full port did not wait");
	EXPECT(read(fd, fill, 8) == 8, "read: %s", strerror(errno));
	EXPECT(exit_code(poller, WAKE_WITHIN) == POLLOUT,
	       "poll did not report room after a read: the read woke no poller");
	close(fd);
}

/* Two readers sleep on an empty port; one byte arrives. */
static void vser_user_two_readers_one_byte(void)
{
	int fd = open_port(PORT0, O_RDWR);
	pid_t r[2] = { read_in_child(PORT0), read_in_child(PORT0) };

	ASSERT(asleep_in(r[0], SYS_read, 2) && asleep_in(r[1], SYS_read, 2),
	       "the two readers never slept in read()");
	EXPECT(write(fd, "1", 1) == 1, "write: %s", strerror(errno));
	expect_one_of_two(r, "reader");
	close(fd);
}

/* Two writers sleep on a full port; a read makes one byte of room. */
static void vser_user_two_writers_one_space(void)
{
	int fd = open_port(PORT0, O_RDWR);
	char fill[VSER_DEFAULT_FIFO_SIZE], c;
	pid_t w[2];

	memset(fill, 'x', sizeof(fill));
	ASSERT(write(fd, fill, sizeof(fill)) == sizeof(fill), "fill: %s", strerror(errno));
	w[0] = write_in_child(PORT0);
	w[1] = write_in_child(PORT0);
	ASSERT(asleep_in(w[0], SYS_write, 2) && asleep_in(w[1], SYS_write, 2),
	       "the two writers never slept in write()");
	EXPECT(read(fd, &c, 1) == 1, "read: %s", strerror(errno));
	expect_one_of_two(w, "writer");
	close(fd);
}

/* Opening the minor after the last port finds no device. */
static void vser_user_minor_past_the_ports_is_no_device(void)
{
	const char *path = "/tmp/vser-past";
	struct stat st;
	unsigned int past;
	int fd;

	ASSERT(stat(PORT0, &st) == 0, "stat %s: %s", PORT0, strerror(errno));
	past = minor(st.st_rdev) + VSER_DEFAULT_NDEVS;
	unlink(path);
	ASSERT(mknod(path, S_IFCHR | 0600, makedev(major(st.st_rdev), past)) == 0,
	       "mknod: %s", strerror(errno));
	fd = open(path, O_RDWR | O_NONBLOCK);
	/* ENXIO from the kernel, or ENODEV from an open() that checks the minor. */
	EXPECT(fd < 0 && (errno == ENXIO || errno == ENODEV),
	       "minor %u, one past the last port, opened: %s", past,
	       fd < 0 ? strerror(errno) : "no error");
	if (fd >= 0)
		close(fd);
	unlink(path);
}

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

/* kill_fasync() queues SIGIO within the write, delivered as it returns. */
static void vser_user_sigio_when_data_arrives(void)
{
	int fd = open_port(PORT0, O_RDWR | O_NONBLOCK), other = open_port(PORT0, O_WRONLY);
	struct sigaction sa = { .sa_handler = on_signal };

	got_signal = 0;
	sigaction(SIGIO, &sa, NULL);
	ASSERT(fcntl(fd, F_SETOWN, getpid()) == 0, "F_SETOWN: %s", strerror(errno));
	ASSERT(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) == 0,
	       "O_ASYNC: %s", strerror(errno));
	EXPECT(write(other, "s", 1) == 1, "write: %s", strerror(errno));
	EXPECT(got_signal == SIGIO, "no SIGIO by the time a write of data returned");
	close(other);
	close(fd);
}

/* In a child: once this process sleeps in system call @nr, send it @sig. */
static void signal_when_asleep(long nr, int sig)
{
	pid_t parent = getpid();

	if (fork() == 0)
		_exit(asleep_in(parent, nr, 5) ? kill(parent, sig) : 1);
}

static void vser_user_signal_interrupts_blocked_read(void)
{
	int fd = open_port(PORT0, O_RDWR);
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART */
	char c;

	got_signal = 0;
	sigaction(SIGUSR1, &sa, NULL);
	signal_when_asleep(SYS_read, SIGUSR1);
	EXPECT(read(fd, &c, 1) == -1 && errno == EINTR,
	       "a signal should end a blocked read with EINTR, got %s", strerror(errno));
	EXPECT(got_signal == SIGUSR1, "the signal handler did not run");
	close(fd);
}

/* A writer blocked on a full port is interrupted by a signal as a reader is. */
static void vser_user_signal_interrupts_blocked_write(void)
{
	int fd = open_port(PORT0, O_RDWR);
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART */
	char fill[VSER_DEFAULT_FIFO_SIZE];

	got_signal = 0;
	memset(fill, 'x', sizeof(fill));
	ASSERT(write(fd, fill, sizeof(fill)) == sizeof(fill), "fill: %s", strerror(errno));
	sigaction(SIGUSR1, &sa, NULL);
	signal_when_asleep(SYS_write, SIGUSR1);
	EXPECT(write(fd, "y", 1) == -1 && errno == EINTR,
	       "a signal should end a blocked write with EINTR, got %s", strerror(errno));
	EXPECT(got_signal == SIGUSR1, "the signal handler did not run");
	close(fd);
}

/* The handler of the restart case: notes the signal, and says so down a pipe. */
static int handled_pipe[2];

static void on_signal_tell(int sig)
{
	got_signal = sig;
	if (write(handled_pipe[1], "h", 1) != 1)
		got_signal = -1;
}

/*
 * -ERESTARTSYS, not -EINTR: with SA_RESTART the kernel restarts the read
 * after the handler ran, and it goes on waiting for the data. A child
 * signals the blocked read, learns that the handler ran, waits for the
 * read to block again, and only then writes the data.
 */
static void vser_user_blocked_read_restarts_after_a_signal(void)
{
	int fd = open_port(PORT0, O_RDWR);
	struct sigaction sa = { .sa_handler = on_signal_tell, .sa_flags = SA_RESTART };
	pid_t parent = getpid();
	char buf[16] = "";
	ssize_t n;

	got_signal = 0;
	ASSERT(pipe(handled_pipe) == 0, "pipe: %s", strerror(errno));
	sigaction(SIGUSR1, &sa, NULL);
	if (fork() == 0) {
		char c;
		int w = open(PORT0, O_WRONLY);

		if (!asleep_in(parent, SYS_read, 5) || kill(parent, SIGUSR1) ||
		    read(handled_pipe[0], &c, 1) != 1)
			_exit(1);
		/* Blocked again (restarted), or returned: either way, the data now. */
		asleep_in(parent, SYS_read, 5);
		_exit(write(w, "late", 4) != 4);
	}
	n = read(fd, buf, sizeof(buf));
	EXPECT(got_signal == SIGUSR1, "the signal handler did not run");
	/* -EINTR would end it; -ERESTARTSYS restarts it, to return the data. */
	EXPECT(n == 4, "with SA_RESTART, a blocked read returned %zd (%s), not the data",
	       n, n < 0 ? strerror(errno) : "no error");
	close(handled_pipe[0]);
	close(handled_pipe[1]);
	close(fd);
}

static const struct ucase cases[] = {
	UCASE(vser_user_nodes_are_char_devices),
	/* Before any read, so that a driver whose reads hang still gets it. */
	UCASE(vser_user_minor_past_the_ports_is_no_device),
	UCASE(vser_user_write_then_read),
	UCASE(vser_user_nonblocking_read_returns_eagain),
	UCASE(vser_user_read_blocks_until_data),
	UCASE(vser_user_write_blocks_until_room),
	UCASE(vser_user_poll_wakes_on_data),
	UCASE(vser_user_poll_wakes_when_room_frees),
	UCASE(vser_user_two_readers_one_byte),
	UCASE(vser_user_two_writers_one_space),
	UCASE(vser_user_sigio_when_data_arrives),
	UCASE(vser_user_signal_interrupts_blocked_read),
	UCASE(vser_user_signal_interrupts_blocked_write),
	UCASE(vser_user_blocked_read_restarts_after_a_signal),
	{}
};

int main(void)
{
	return ktap_run("vser_user", cases);
}
