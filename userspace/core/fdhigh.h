/* Where a file descriptor sits decides when a dying process closes it: the
 * kernel releases an exiting task's files as a stack, highest number
 * first, and releasing the io_uring ring among them takes milliseconds.
 * The few descriptors whose close is a signal to others (the XDP
 * sentinel, the HA link's death watch) are moved to the top of the table,
 * so they go first. */
#ifndef SIPHA_CORE_FDHIGH_H
#define SIPHA_CORE_FDHIGH_H

/* The slots at the top, highest first. */
enum fd_rank {
	FD_RANK_SENTINEL = 0, /* released first: the VIP stops being answered */
	FD_RANK_WATCH = 1, /* then the peer is told */
};

/* Moves FD (close-on-exec) to its rank's slot near the top of the table
 * (at most fd 65535, under RLIMIT_NOFILE) and returns the new number, or
 * FD itself when that cannot be done; FD is closed when moved. */
int fd_move_high(int fd, enum fd_rank rank);

#endif
