/* notifysink — stands in for systemd's notification socket.
 *
 *   notifysink [-T SEC] PATH
 *
 * Binds a Unix datagram socket at PATH (removed first, and again at the
 * end), the NOTIFY_SOCKET a test gives siphad, and prints each message it
 * receives as one line
 *
 *   MS MESSAGE
 *
 * MS being milliseconds since it started and MESSAGE the datagram with its
 * newlines turned into spaces ("READY=1", "WATCHDOG=1", "STOPPING=1"),
 * flushed at once.  Bounded: it ends after SEC seconds (default 60), or on
 * SIGTERM/SIGINT.  Exit status: 0, 1 on socket errors, 2 on usage errors. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int sink_open(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "notifysink: path too long: %s\n", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		fprintf(stderr, "notifysink: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	unsigned long secs = 60;
	uint64_t t0 = now_ms(), end;
	char buf[4096], *e;
	int opt, fd;

	while ((opt = getopt(argc, argv, "T:")) != -1) {
		if (opt != 'T' || !(secs = strtoul(optarg, &e, 10)) || *e || secs > 86400) {
			fprintf(stderr, "usage: notifysink [-T SEC] PATH\n");
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: notifysink [-T SEC] PATH\n");
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fd = sink_open(argv[optind]);
	if (fd < 0)
		return 1;
	end = t0 + secs * 1000;
	while (!stop && now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0)
			continue;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n' || !buf[i])
				buf[i] = ' ';
		while (n > 0 && buf[n - 1] == ' ')
			n--;
		buf[n] = '\0';
		printf("%llu %s\n", (unsigned long long)(now_ms() - t0), buf);
		fflush(stdout);
	}
	close(fd);
	unlink(argv[optind]);
	return 0;
}
