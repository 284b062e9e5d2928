// SPDX-License-Identifier: GPL-2.0
/*
 * ledctl - drive the fsled LEDs by hand, in the VM:
 *
 *	ledctl on 2		LED2 on, then more commands from the prompt
 *	ledctl on 2 off 5	commands run in order
 *
 * fsled turns every LED off when its device is closed, so ledctl keeps
 * /dev/fsled open and reads further commands ("on 3", "off 2") until
 * "quit" or end of input. Closing it shows release() at work.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "fsled_ioctl.h"

/* Run one command; 0 if it worked, or -1 after saying why. */
static int run_command(int fd, const char *verb, const char *led)
{
	unsigned long cmd;
	char *end;
	long nr;

	if (!strcmp(verb, "on")) {
		cmd = FSLED_ON;
	} else if (!strcmp(verb, "off")) {
		cmd = FSLED_OFF;
	} else {
		fprintf(stderr, "ledctl: unknown command '%s'; use on N, off N or quit\n", verb);
		return -1;
	}
	nr = led ? strtol(led, &end, 10) : 0;
	if (!led || *end || end == led) {
		fprintf(stderr, "ledctl: say which LED, 2 to 5: '%s 2'\n", verb);
		return -1;
	}
	/* LED2 is argument 0: see fsled_ioctl.h. */
	if (ioctl(fd, cmd, nr - 2 + FSLED_LED2) < 0) {
		fprintf(stderr, "ledctl: %s %ld: %s\n", verb, nr, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int fd, i, bad = 0, tty = isatty(STDIN_FILENO);
	char line[64];

	if (argc % 2 == 0) {
		fprintf(stderr, "usage: ledctl [on|off N]...  (N is 2 to 5)\n");
		return 2;
	}
	fd = open(FSLED_DEV, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "ledctl: %s: %s%s\n", FSLED_DEV, strerror(errno),
			errno == ENOENT ? " (is the fsled driver loaded?)" :
			errno == EBUSY ? " (another ledctl has it open)" : "");
		return 1;
	}
	for (i = 1; i + 1 < argc; i += 2)
		bad |= run_command(fd, argv[i], argv[i + 1]);

	for (;;) {
		char *verb, *led;

		if (tty) {
			printf("ledctl> ");
			fflush(stdout);
		}
		if (!fgets(line, sizeof(line), stdin))
			break;
		verb = strtok(line, " \t\n");
		led = strtok(NULL, " \t\n");
		if (!verb)
			continue;
		if (!strcmp(verb, "quit"))
			break;
		bad |= run_command(fd, verb, led);
	}
	if (tty)
		printf("\nledctl: closing %s turns every LED off\n", FSLED_DEV);
	close(fd);
	return bad ? 1 : 0;
}
