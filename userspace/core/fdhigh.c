#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/fdhigh.h"

#define FD_TOP 65535

int fd_move_high(int fd, enum fd_rank rank)
{
	struct rlimit rl;
	long top;
	int hi;

	if (fd < 0 || getrlimit(RLIMIT_NOFILE, &rl))
		return fd;
	top = rl.rlim_cur > FD_TOP ? FD_TOP : (long)rl.rlim_cur - 1;
	top -= (long)rank;
	if (top <= fd)
		return fd;
	/* The lowest free slot at or above TOP: TOP itself when free. */
	hi = fcntl(fd, F_DUPFD_CLOEXEC, (int)top);
	if (hi < 0)
		return fd;
	close(fd);
	return hi;
}
