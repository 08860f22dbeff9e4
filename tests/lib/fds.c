/* SPDX-License-Identifier: MIT */
#include "fds.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

/*
 * getdents64 on a directory fd kept open: the fuzzers count twice per execution, and
 * opendir()'s buffer cost more than the engine under ASan. A forked child reopens it (the
 * inherited fd still lists the parent's fds).
 */
int count_fds(void)
{
	static int dir = -1;
	static pid_t dir_pid;
	char buf[4096];
	ssize_t got;
	int n = 0;

	if (dir >= 0 && dir_pid != getpid()) {
		close(dir);
		dir = -1;
	}
	if (dir < 0) {
		dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		dir_pid = getpid();
	}
	if (dir < 0 || lseek(dir, 0, SEEK_SET) != 0)
		return -1;
	while ((got = getdents64(dir, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < got;) {
			struct dirent64 *de = (struct dirent64 *)(buf + off);

			n += de->d_name[0] != '.';
			off += de->d_reclen;
		}
	return got == 0 ? n - 1 : -1; /* the directory's own fd */
}
