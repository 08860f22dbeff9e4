/* SPDX-License-Identifier: MIT */
/*
 * The device model (devmodel.h): a small FUSE file system, one file per device and side,
 * that paces every read and write like a device producing or consuming migration state.
 *
 * Why FUSE: a VFIO data fd's read() blocks in the kernel until the driver has the next piece
 * and has no non-blocking mode, so io_uring runs it in an io-wq worker. A FUSE file whose
 * server sleeps before answering behaves the same way from the reader's side (a regular
 * file without FMODE_NOWAIT, a task blocked in the kernel), while memfds, pipes or sockets
 * are either instant or pollable and would take io_uring's fast paths.
 *
 * Why a server process of its own (rather than threads of the caller): the bench's runner
 * forks the source and destination processes and measures each with wait4(); with the
 * server outside both, its CPU is "the device", counted in neither side. A forked child
 * also inherits the parent's resident memory in its RSS, and the server's request buffers
 * (about 1 MiB per thread, a thread per file) would inflate both sides' peak RSS.
 * Last, a child forked while server threads hold libfuse or model locks would inherit
 * them locked; with no server thread in the caller, fork() stays as safe as before.
 *
 * How each request is served (one request at a time per file, as a driver serialises
 * reads of one data fd under its lock):
 *   ready = max(now, the file's previous ready) + latency + bytes / rate
 *   sink: store the bytes (pwrite to the backing fd at the stream position);
 *   sleep until `ready`; reply.
 * The store overlaps the wait, so a write takes max(store, latency + bytes/rate).
 * A source replies straight from a read-only mapping of its backing fd (one copy: the
 * kernel's, into the reader's buffer), populated when the server starts, before the run:
 * with many devices at once the copies run from cold caches and a second copy (pread into a
 * buffer, then reply) cost the server up to twice the CPU; faulting the mapping in during
 * the run cost more than the copy it saves. pread is the fallback for a backing fd that
 * cannot be mapped.
 *
 * A pre-copy file (devmodel.h) is a source whose readable end moves: its device's state
 * (what was read, the unread initial and dirty bytes, the phase) lives in a MAP_SHARED
 * mapping under a process-shared mutex, because the server updates it as it serves reads
 * while the creator or a process that inherited the model asks for the info or starts
 * stop-copy. Nobody ticks the dirty production: whoever takes the lock first brings it up
 * to date from CLOCK_MONOTONIC (system-wide, so every process agrees). A read reserves its
 * bytes (moves the device's position) before it sleeps for the pacing, as a driver hands
 * out its buffer; an info taken meanwhile already counts them as read. A read with nothing
 * available answers ENOMSG at once, without the latency, like the end of a stream.
 *
 * Pitfalls this avoids (measured on this machine, /work/shared/notes/machine.md):
 *  - io_uring reads at offset -1 of a direct_io FUSE file do not advance the file position:
 *    the files are streams (FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE) whose position the server
 *    keeps per open file; the offset in each request is ignored.
 *  - with FUSE_CAP_ASYNC_DIO the kernel may split one large read or write into requests
 *    that reach the server out of order: it is switched off.
 *  - the server needs a thread per file blocked at once, plus a few. libfuse's
 *    fuse_session_loop_mt() starts its threads one at a time, each when a request finds no
 *    idle thread: with 64 reads arriving at once it had only ~50 threads after 0.3 s, so a
 *    quarter of the devices started late (measured: 64 x 1 MiB at 2 MiB/s took 1.29 s, not
 *    0.5). (It also reads its config as the 3.12 struct only with FUSE_USE_VERSION >= 312;
 *    older silently keeps 10 threads.) The server starts all its threads up front instead,
 *    each a plain fuse_session_receive_buf / fuse_session_process_buf loop.
 * Request size: libfuse 3.14 negotiates max_write = 1 MiB and max_pages = 256, so a
 * page-aligned 1 MiB read or write is one request; a buffer that does not start on a page
 * boundary needs 257 pages and arrives as two requests (the latency applies to each; the
 * rate is per byte and unaffected).
 */
#define FUSE_USE_VERSION 312
#include "devmodel.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MOUNT_PREFIX "/tmp/vfio-uring-devmodel."
#define ROOT_INO 1
#define FIRST_FILE_INO 2
#define DIR_LEN 64
#define PATH_LEN (DIR_LEN + 32)

/* In a MAP_SHARED mapping: written by the server, read by the creator. */
struct shared_stats {
	uint64_t read_requests, read_bytes, write_requests, write_bytes;
	uint64_t reads_now, writes_now, reads_peak, writes_peak;
	double startup_cpu_s;  /* the server's CPU before it served anything */
};

enum precopy_phase { PRECOPY_NOT_OPENED, PRECOPY_LIVE, PRECOPY_STOP_COPY };

/*
 * A pre-copy file's device, in a MAP_SHARED mapping: changed under `lock` by the server
 * (reads, the first open) and by any process holding the model (info, reinit, stop-copy).
 * Bytes produced so far = pos + initial_left + dirty_left, never more than live_cap while
 * live; a read takes the initial bytes first (the stream has no holes: which bytes are
 * "initial" or "dirty" is only accounting, as in a driver's counters).
 */
struct shared_precopy {
	pthread_mutex_t lock;  /* process-shared and robust: a process may die holding it */
	enum precopy_phase phase;
	unsigned flags;        /* DEVMODEL_PRECOPY_REINIT, until the next info */
	uint64_t live_cap;     /* backing size - stop_copy_bytes */
	uint64_t pos;          /* bytes read (reserved by reads) */
	uint64_t initial_left; /* initial bytes not yet read */
	uint64_t dirty_left;   /* dirty bytes produced, not yet read */
	uint64_t end;          /* in stop-copy: the stream's length */
	int64_t dirty_ns;      /* CLOCK_MONOTONIC ns up to which dirty bytes are produced */
};

struct devmodel {
	pid_t server;
	int stop_fd;                 /* a byte or EOF here stops the server */
	unsigned n;
	struct devmodel_file *files;
	char dir[DIR_LEN];
	char (*paths)[PATH_LEN];
	uint64_t *sizes;                /* a source's or pre-copy file's backing size */
	struct shared_stats *stats;
	struct shared_precopy *precopy; /* n entries; used for PRECOPY files only */
};

/* What the server tells its creator once mounted (or why it could not). */
struct ready_msg {
	int err;
	char msg[200];
};

static const char *kind_name(enum devmodel_kind kind)
{
	return kind == DEVMODEL_SOURCE ? "source" : kind == DEVMODEL_SINK ? "sink" : "precopy";
}

static bool kind_reads(enum devmodel_kind kind)
{
	return kind == DEVMODEL_SOURCE || kind == DEVMODEL_PRECOPY;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void mono_sleep_until(double t)
{
	struct timespec ts;

	if (t <= mono_now())
		return;
	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* ==== a pre-copy file's device (any process: shared memory) ==== */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void precopy_lock(struct shared_precopy *p)
{
	/* The state is counters only, consistent at every unlock: a dead owner left it whole. */
	if (pthread_mutex_lock(&p->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&p->lock);
}

static void precopy_unlock(struct shared_precopy *p)
{
	pthread_mutex_unlock(&p->lock);
}

/* Under the lock: the dirty bytes the live device has produced up to `now`. */
static void precopy_produce(struct shared_precopy *p, const struct devmodel_file *f, int64_t now)
{
	uint64_t produced = p->pos + p->initial_left + p->dirty_left, room, want, add;
	double w;

	if (p->phase != PRECOPY_LIVE || !f->dirty_rate || now <= p->dirty_ns)
		return;
	w = (double)(now - p->dirty_ns) * (double)f->dirty_rate * 1e-9;
	want = w < 1e18 ? (uint64_t)w : (uint64_t)1e18;
	room = p->live_cap > produced ? p->live_cap - produced : 0;
	if (f->dirty_max)
		room = min_u64(room, f->dirty_max > p->dirty_left ? f->dirty_max - p->dirty_left : 0);
	add = min_u64(want, room);
	p->dirty_left += add;
	if (add < want) /* capped: the device re-dirties what is dirty already */
		p->dirty_ns = now;
	else if (add) /* keep the fraction of a byte for next time; never ahead of the rate */
		p->dirty_ns += (int64_t)((double)add * 1e9 / (double)f->dirty_rate) + 1;
}

/*
 * Under the lock: takes up to `size` bytes of the stream for a read. Returns 0 with *n
 * bytes from *start (0 bytes: end of stream) or ENOMSG (live, nothing produced).
 */
static int precopy_take(struct shared_precopy *p, const struct devmodel_file *f, size_t size,
			uint64_t *start, size_t *n)
{
	uint64_t avail, from_initial;

	precopy_produce(p, f, mono_ns());
	if (p->phase == PRECOPY_STOP_COPY)
		avail = p->end - p->pos;
	else
		avail = p->initial_left + p->dirty_left;
	*start = p->pos;
	*n = (size_t)min_u64(avail, size);
	if (!*n)
		return p->phase == PRECOPY_STOP_COPY ? 0 : ENOMSG;
	p->pos += *n;
	from_initial = min_u64(*n, p->initial_left);
	p->initial_left -= from_initial;
	/* Past the dirty bytes (stop-copy only) the rest is the stop-copy bytes. */
	p->dirty_left -= min_u64(*n - from_initial, p->dirty_left);
	return 0;
}

/* ==== the server (runs only in the forked server process) ==== */

struct srv_file {
	struct devmodel_file f;
	uint64_t size;           /* source: bytes the stream has */
	const uint8_t *map;      /* source: its bytes, mapped (NULL: pread into a buffer) */
	struct shared_precopy *pc; /* a pre-copy file's device; else NULL */
	pthread_mutex_t lock;    /* one request at a time per device */
	double next_ready;       /* CLOCK_MONOTONIC seconds the device is free again */
};

struct srv {
	struct srv_file *files;
	unsigned n;
	struct shared_stats *stats;
};

/* Per open file: the stream position. */
struct srv_open {
	uint64_t pos;
};

/*
 * The mount directory, for the stop paths (a signal handler and the stop watcher). The
 * server process is single-purpose, so one process-wide pointer is the natural home.
 */
static const char *srv_dir;

static void srv_exit(int code)
{
	/*
	 * MNT_DETACH: the mount leaves the namespace at once even if a file is still open.
	 * _exit then closes /dev/fuse, which aborts the connection: a reader still blocked
	 * in the kernel gets ENOTCONN instead of hanging, and no stale mount is left.
	 */
	if (srv_dir) {
		umount2(srv_dir, MNT_DETACH);
		rmdir(srv_dir);
	}
	_exit(code);
}

static void srv_on_signal(int sig)
{
	(void)sig;
	srv_exit(3); /* umount2, rmdir and _exit are async-signal-safe */
}

static struct srv_file *srv_file_of(struct srv *s, fuse_ino_t ino)
{
	return ino >= FIRST_FILE_INO && ino < FIRST_FILE_INO + s->n ? &s->files[ino - FIRST_FILE_INO]
								     : NULL;
}

static void srv_fill_attr(struct srv *s, fuse_ino_t ino, struct stat *st)
{
	struct srv_file *f = srv_file_of(s, ino);

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (!f) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return;
	}
	st->st_mode = S_IFREG | (kind_reads(f->f.kind) ? 0444 : 0222);
	st->st_nlink = 1;
	/*
	 * A read-side file reports its backing size: the kernel answers reads from io_uring at
	 * or past i_size with 0 without asking the server (a PRECOPY file of size 0 read as
	 * end of stream at once).
	 */
	st->st_size = kind_reads(f->f.kind) ? (off_t)f->size : 0;
}

static void in_flight_enter(uint64_t *now, uint64_t *peak)
{
	uint64_t v = __atomic_add_fetch(now, 1, __ATOMIC_RELAXED);
	uint64_t p = __atomic_load_n(peak, __ATOMIC_RELAXED);

	while (v > p && !__atomic_compare_exchange_n(peak, &p, v, true, __ATOMIC_RELAXED,
						     __ATOMIC_RELAXED))
		;
}

/* Under f->lock: when a request of n bytes arriving now may complete. */
static double srv_pace(struct srv_file *f, uint64_t n)
{
	double now = mono_now(), start = f->next_ready > now ? f->next_ready : now;
	double ready = start + f->f.latency_us * 1e-6;

	if (f->f.rate)
		ready += (double)n / (double)f->f.rate;
	f->next_ready = ready;
	return ready;
}

static void srv_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Split requests arriving out of order would scramble a stream (see the top). */
	conn->want &= ~FUSE_CAP_ASYNC_DIO;
}

static void srv_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct srv *s = fuse_req_userdata(req);
	struct fuse_entry_param e;
	unsigned idx;
	char kind[16], tail;

	if (parent != ROOT_INO || sscanf(name, "%u.%15[a-z]%c", &idx, kind, &tail) != 2 ||
	    idx >= s->n || strcmp(kind, kind_name(s->files[idx].f.kind))) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = FIRST_FILE_INO + idx;
	e.attr_timeout = 3600;
	e.entry_timeout = 3600;
	srv_fill_attr(s, e.ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void srv_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct srv *s = fuse_req_userdata(req);
	struct stat st;

	(void)fi;
	if (ino != ROOT_INO && !srv_file_of(s, ino)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	srv_fill_attr(s, ino, &st);
	fuse_reply_attr(req, &st, 3600);
}

static void srv_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct srv *s = fuse_req_userdata(req);
	struct srv_file *f = srv_file_of(s, ino);
	int want = f && kind_reads(f->f.kind) ? O_RDONLY : O_WRONLY;
	struct srv_open *o;

	if (!f) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != want) {
		fuse_reply_err(req, EACCES);
		return;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (f->pc) {
		/* The device runs (and dirties) from the moment its data fd is first opened. */
		precopy_lock(f->pc);
		if (f->pc->phase == PRECOPY_NOT_OPENED) {
			f->pc->phase = PRECOPY_LIVE;
			f->pc->dirty_ns = mono_ns();
		}
		precopy_unlock(f->pc);
	}
	fi->fh = (uint64_t)(uintptr_t)o;
	fi->direct_io = 1;   /* no page cache: every read and write reaches the server */
	fi->nonseekable = 1; /* a stream, like a VFIO data fd */
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) == -ENOENT)
		free(o); /* the opener was interrupted: no release will come */
}

static void srv_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	free((struct srv_open *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void srv_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	/* One buffer per server thread, grown to the largest request seen. */
	static __thread uint8_t *buf;
	static __thread size_t buf_size;
	struct srv *s = fuse_req_userdata(req);
	struct srv_file *f = srv_file_of(s, ino);
	struct srv_open *o = (struct srv_open *)(uintptr_t)fi->fh;
	const uint8_t *data = NULL;
	size_t n = 0, done = 0;
	uint64_t pos = o->pos; /* where this read starts in the stream */
	int err = 0;

	(void)off; /* a stream: the position is the open file's, kept here */
	if (!f || !kind_reads(f->f.kind)) {
		fuse_reply_err(req, EBADF);
		return;
	}
	in_flight_enter(&s->stats->reads_now, &s->stats->reads_peak);
	pthread_mutex_lock(&f->lock);
	if (f->pc) {
		/* The device's position, not the open's (devmodel.h); reserved here. */
		precopy_lock(f->pc);
		err = precopy_take(f->pc, &f->f, size, &pos, &n);
		precopy_unlock(f->pc);
	} else if (o->pos < f->size) {
		n = f->size - o->pos < size ? (size_t)(f->size - o->pos) : size;
	}
	if (n > buf_size && !f->map) {
		uint8_t *nb = realloc(buf, n);

		if (nb) {
			buf = nb;
			buf_size = n;
		} else {
			err = ENOMEM;
		}
	}
	if (n && !err && f->map) {
		/* End of stream answers at once; data waits for the device. */
		mono_sleep_until(srv_pace(f, n));
		data = f->map + pos;
		done = n;
	} else if (n && !err) {
		double ready = srv_pace(f, n);

		data = buf;
		while (done < n) {
			ssize_t r = pread(f->f.backing_fd, buf + done, n - done,
					  (off_t)(pos + done));

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				err = r < 0 ? errno : EIO;
				break;
			}
			done += (size_t)r;
		}
		mono_sleep_until(ready);
	}
	/*
	 * A pre-copy device's position moved when the bytes were reserved (a failed pread
	 * of a mappable backing fd, which only a broken backing file can cause, loses them).
	 */
	if (!f->pc)
		o->pos += done;
	pthread_mutex_unlock(&f->lock);
	__atomic_add_fetch(&s->stats->read_requests, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&s->stats->read_bytes, done, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&s->stats->reads_now, 1, __ATOMIC_RELAXED);
	/*
	 * After the unlock: the mapping lives as long as the server, the buffer is this
	 * thread's, and the position has moved on.
	 */
	if (err && !done)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, (const char *)data, done);
}

static void srv_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size,
		      off_t off, struct fuse_file_info *fi)
{
	struct srv *s = fuse_req_userdata(req);
	struct srv_file *f = srv_file_of(s, ino);
	struct srv_open *o = (struct srv_open *)(uintptr_t)fi->fh;
	size_t done = 0;
	double ready;
	int err = 0;

	(void)off; /* a stream: see srv_read */
	if (!f || f->f.kind != DEVMODEL_SINK) {
		fuse_reply_err(req, EBADF);
		return;
	}
	in_flight_enter(&s->stats->writes_now, &s->stats->writes_peak);
	pthread_mutex_lock(&f->lock);
	ready = srv_pace(f, size);
	while (done < size) {
		ssize_t r = pwrite(f->f.backing_fd, data + done, size - done,
				   (off_t)(o->pos + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r < 0 ? errno : EIO;
			break;
		}
		done += (size_t)r;
	}
	mono_sleep_until(ready);
	o->pos += done;
	pthread_mutex_unlock(&f->lock);
	__atomic_add_fetch(&s->stats->write_requests, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&s->stats->write_bytes, done, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&s->stats->writes_now, 1, __ATOMIC_RELAXED);
	if (err && !done)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, done);
}

static void srv_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	struct srv *s = fuse_req_userdata(req);
	char *buf;
	size_t used = 0;

	(void)fi;
	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Entry k: 0 ".", 1 "..", then the files; the offset of an entry is k + 1. */
	for (off_t k = off; k < (off_t)s->n + 2; k++) {
		struct stat st;
		char name[32];
		size_t len;

		if (k < 2) {
			snprintf(name, sizeof(name), k ? ".." : ".");
			srv_fill_attr(s, ROOT_INO, &st);
		} else {
			unsigned idx = (unsigned)(k - 2);

			snprintf(name, sizeof(name), "%u.%s", idx, kind_name(s->files[idx].f.kind));
			srv_fill_attr(s, FIRST_FILE_INO + idx, &st);
		}
		len = fuse_add_direntry(req, buf + used, size - used, name, &st, k + 1);
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static const struct fuse_lowlevel_ops srv_ops = {
	.init = srv_init,
	.lookup = srv_lookup,
	.getattr = srv_getattr,
	.open = srv_open,
	.read = srv_read,
	.write = srv_write,
	.release = srv_release,
	.readdir = srv_readdir,
};

/* The server must not hold the caller's other fds (sockets above all: a peer's EOF). */
static void srv_close_other_fds(const int *keep, unsigned nkeep)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int *victims = NULL;
	unsigned nv = 0, cap = 0;

	if (!d)
		return;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		bool kept = fd <= 2 || fd == dirfd(d) || de->d_name[0] == '.';

		for (unsigned i = 0; i < nkeep && !kept; i++)
			kept = keep[i] == fd;
		if (kept)
			continue;
		if (nv == cap) {
			int *nvict = realloc(victims, (cap = cap ? 2 * cap : 64) * sizeof(int));

			if (!nvict)
				break;
			victims = nvict;
		}
		victims[nv++] = fd;
	}
	closedir(d);
	for (unsigned i = 0; i < nv; i++)
		close(victims[i]);
	free(victims);
}

/* One server thread: takes the next request from /dev/fuse and serves it, forever. */
static void *srv_worker(void *arg)
{
	struct fuse_session *se = arg;
	struct fuse_buf buf = { .mem = NULL };

	for (;;) {
		int r = fuse_session_receive_buf(se, &buf);

		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r <= 0)
			break; /* unmounted (0) or the connection failed */
		fuse_session_process_buf(se, &buf);
	}
	return NULL;
}

static void srv_report(int fd, int err, const char *fmt, const char *arg)
{
	struct ready_msg rm = { .err = err };

	if (fmt)
		snprintf(rm.msg, sizeof(rm.msg), fmt, arg);
	if (write(fd, &rm, sizeof(rm)) != (ssize_t)sizeof(rm))
		srv_exit(4);
}

static void srv_main(struct devmodel *m, pid_t creator, int ready_fd, int stop_fd)
{
	char *argv[] = { (char *)"vfio-uring-devmodel", (char *)"-o",
			 (char *)"fsname=vfio-uring-devmodel,subtype=devmodel", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct fuse_session *se;
	struct srv s = { .n = m->n, .stats = m->stats };
	pthread_attr_t attr;
	int *keep = calloc(m->n + 2, sizeof(int));
	char c;

	srv_dir = m->dir;
	prctl(PR_SET_NAME, "vub-devmodel");
	signal(SIGINT, srv_on_signal);
	signal(SIGTERM, srv_on_signal);
	signal(SIGHUP, srv_on_signal);
	signal(SIGPIPE, SIG_IGN);
	/* The creator's death stops the server even if another process holds stop_fd. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != creator)
		srv_exit(5);
	s.files = calloc(m->n, sizeof(*s.files));
	if (!keep || !s.files) {
		srv_report(ready_fd, -ENOMEM, "out of memory", NULL);
		srv_exit(1);
	}
	keep[0] = ready_fd;
	keep[1] = stop_fd;
	for (unsigned i = 0; i < m->n; i++) {
		struct stat st;

		keep[2 + i] = m->files[i].backing_fd;
		s.files[i].f = m->files[i];
		pthread_mutex_init(&s.files[i].lock, NULL);
		if (fstat(m->files[i].backing_fd, &st) < 0) {
			srv_report(ready_fd, -errno, "file %s: backing fd: fstat failed",
				   m->paths[i]);
			srv_exit(1);
		}
		s.files[i].size = (uint64_t)st.st_size;
		if (s.files[i].f.kind == DEVMODEL_PRECOPY)
			s.files[i].pc = &m->precopy[i];
		if (kind_reads(s.files[i].f.kind) && st.st_size > 0) {
			void *map = mmap(NULL, (size_t)st.st_size, PROT_READ,
					 MAP_SHARED | MAP_POPULATE, m->files[i].backing_fd, 0);

			s.files[i].map = map == MAP_FAILED ? NULL : map;
		}
	}
	srv_close_other_fds(keep, m->n + 2);
	free(keep);

	se = fuse_session_new(&args, &srv_ops, sizeof(srv_ops), &s);
	if (!se) {
		srv_report(ready_fd, -EINVAL, "fuse_session_new failed", NULL);
		srv_exit(1);
	}
	if (fuse_session_mount(se, m->dir) != 0) {
		srv_report(ready_fd, -EPERM,
			   "mounting the FUSE file system on %s failed (libfuse says why above)",
			   m->dir);
		srv_exit(1);
	}
	/*
	 * Every file may have a request blocked at once, plus open/release traffic. The
	 * threads only sleep and copy: a small stack each.
	 */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256u << 10);
	for (unsigned i = 0; i < m->n + 4; i++) {
		pthread_t t;

		if (pthread_create(&t, &attr, srv_worker, se)) {
			srv_report(ready_fd, -EAGAIN, "cannot start the server's threads", NULL);
			srv_exit(1);
		}
	}
	pthread_attr_destroy(&attr);
	{
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		m->stats->startup_cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
					  (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
	}
	srv_report(ready_fd, 0, NULL, NULL);
	close(ready_fd);
	/* This thread waits for the stop byte, or EOF when the creator is gone. */
	while (read(stop_fd, &c, 1) < 0 && errno == EINTR)
		;
	srv_exit(0);
}

/* ==== the creator's side ==== */

/* Mounts and directories left by a creator that died without stopping its server. */
static void cleanup_stale(void)
{
	FILE *mounts = fopen("/proc/self/mounts", "r");
	char line[1024];
	DIR *d;
	struct dirent *de;

	while (mounts && fgets(line, sizeof(line), mounts)) {
		char dev[256], dir[512];
		long pid;

		if (sscanf(line, "%255s %511s", dev, dir) != 2 ||
		    strncmp(dir, MOUNT_PREFIX, strlen(MOUNT_PREFIX)) ||
		    sscanf(dir + strlen(MOUNT_PREFIX), "%ld.", &pid) != 1 || pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
			umount2(dir, MNT_DETACH);
			rmdir(dir);
		}
	}
	if (mounts)
		fclose(mounts);
	d = opendir("/tmp");
	while (d && (de = readdir(d))) {
		const char *prefix = MOUNT_PREFIX + strlen("/tmp/");
		char dir[512];
		long pid;

		if (strncmp(de->d_name, prefix, strlen(prefix)) ||
		    sscanf(de->d_name + strlen(prefix), "%ld.", &pid) != 1 || pid <= 0)
			continue;
		snprintf(dir, sizeof(dir), "/tmp/%s", de->d_name);
		if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			rmdir(dir); /* only ever removes an empty, unmounted directory */
	}
	if (d)
		closedir(d);
}

int devmodel_available(char *why, size_t why_len)
{
	int fd;

	if (access("/dev/fuse", F_OK) < 0) {
		snprintf(why, why_len, "no /dev/fuse on this machine (modprobe fuse, or give the "
				       "container the device)");
		return -ENODEV;
	}
	if (geteuid() != 0) {
		snprintf(why, why_len, "not root: mounting the device model's FUSE file system "
				       "needs root");
		return -EPERM;
	}
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		snprintf(why, why_len, "cannot open /dev/fuse: %s", strerror(err));
		return -err;
	}
	close(fd);
	return 0;
}

/* The device of a pre-copy file of `size` backing bytes, before its first open. */
static int precopy_init(struct shared_precopy *p, const struct devmodel_file *f, uint64_t size)
{
	pthread_mutexattr_t attr;
	int r;

	if (f->stop_copy_bytes > size)
		return -EINVAL;
	r = pthread_mutexattr_init(&attr);
	if (!r)
		r = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	if (!r)
		r = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	if (!r)
		r = pthread_mutex_init(&p->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (r)
		return -r;
	p->phase = PRECOPY_NOT_OPENED;
	p->live_cap = size - f->stop_copy_bytes;
	p->initial_left = min_u64(f->precopy_initial, p->live_cap);
	return 0;
}

int devmodel_create(const struct devmodel_file *files, unsigned n, struct devmodel **out,
		    char *err, size_t err_len)
{
	char dummy[8];
	struct devmodel *m;
	struct ready_msg rm;
	int ready[2] = { -1, -1 }, stop[2] = { -1, -1 }, ret;
	ssize_t got;

	if (!err) {
		err = dummy;
		err_len = sizeof(dummy);
	}
	err[0] = 0;
	*out = NULL;
	if (!n || !files)
		return -EINVAL;
	ret = devmodel_available(err, err_len);
	if (ret)
		return ret;
	for (unsigned i = 0; i < n; i++) {
		if ((files[i].kind != DEVMODEL_SOURCE && files[i].kind != DEVMODEL_SINK &&
		     files[i].kind != DEVMODEL_PRECOPY) ||
		    files[i].backing_fd < 0) {
			snprintf(err, err_len, "file %u: bad kind or backing fd", i);
			return -EINVAL;
		}
	}
	cleanup_stale();
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->server = -1;
	m->stop_fd = -1;
	m->n = n;
	m->files = calloc(n, sizeof(*m->files));
	m->paths = calloc(n, sizeof(*m->paths));
	m->sizes = calloc(n, sizeof(*m->sizes));
	m->stats = mmap(NULL, sizeof(*m->stats), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m->stats == MAP_FAILED)
		m->stats = NULL;
	m->precopy = mmap(NULL, n * sizeof(*m->precopy), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m->precopy == MAP_FAILED)
		m->precopy = NULL;
	if (!m->files || !m->paths || !m->sizes || !m->stats || !m->precopy) {
		ret = -ENOMEM;
		goto fail;
	}
	memcpy(m->files, files, n * sizeof(*files));
	for (unsigned i = 0; i < n; i++) {
		struct stat st;

		if (!kind_reads(files[i].kind))
			continue;
		if (fstat(files[i].backing_fd, &st) < 0) {
			ret = -errno;
			snprintf(err, err_len, "file %u: backing fd: fstat: %s", i, strerror(errno));
			goto fail;
		}
		m->sizes[i] = (uint64_t)st.st_size;
		if (files[i].kind == DEVMODEL_PRECOPY) {
			ret = precopy_init(&m->precopy[i], &files[i], m->sizes[i]);
			if (ret) {
				snprintf(err, err_len, "file %u: stop_copy_bytes %llu > backing size "
					 "%llu, or no process-shared lock", i,
					 (unsigned long long)files[i].stop_copy_bytes,
					 (unsigned long long)m->sizes[i]);
				goto fail;
			}
		}
	}
	snprintf(m->dir, sizeof(m->dir), MOUNT_PREFIX "%ld.XXXXXX", (long)getpid());
	if (!mkdtemp(m->dir)) {
		ret = -errno;
		snprintf(err, err_len, "mkdtemp %s: %s", m->dir, strerror(errno));
		m->dir[0] = 0;
		goto fail;
	}
	for (unsigned i = 0; i < n; i++)
		snprintf(m->paths[i], sizeof(m->paths[i]), "%s/%u.%s", m->dir, i,
			 kind_name(files[i].kind));
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(stop, O_CLOEXEC) < 0) {
		ret = -errno;
		goto fail;
	}
	fflush(NULL);
	{
		pid_t creator = getpid();

		m->server = fork();
		if (m->server == 0) {
			close(ready[0]);
			close(stop[1]);
			srv_main(m, creator, ready[1], stop[0]);
		}
	}
	if (m->server < 0) {
		ret = -errno;
		snprintf(err, err_len, "fork: %s", strerror(errno));
		goto fail;
	}
	close(ready[1]);
	ready[1] = -1;
	close(stop[0]);
	stop[0] = -1;
	m->stop_fd = stop[1];
	stop[1] = -1;
	do {
		got = read(ready[0], &rm, sizeof(rm));
	} while (got < 0 && errno == EINTR);
	if (got != (ssize_t)sizeof(rm)) {
		ret = -ECHILD;
		snprintf(err, err_len, "the device model's server process died while starting");
		goto fail;
	}
	if (rm.err) {
		ret = rm.err;
		snprintf(err, err_len, "device model: %s", rm.msg);
		goto fail;
	}
	close(ready[0]);
	*out = m;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (ready[i] >= 0)
			close(ready[i]);
		if (stop[i] >= 0)
			close(stop[i]);
	}
	devmodel_destroy(m, NULL);
	return ret;
}

int devmodel_open(const struct devmodel *m, unsigned i)
{
	int fd;

	if (!m || i >= m->n)
		return -EINVAL;
	fd = open(m->paths[i], (kind_reads(m->files[i].kind) ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

const char *devmodel_path(const struct devmodel *m, unsigned i)
{
	return m && i < m->n ? m->paths[i] : NULL;
}

void devmodel_get_stats(const struct devmodel *m, struct devmodel_stats *st)
{
	const struct shared_stats *s = m->stats;

	memset(st, 0, sizeof(*st));
	st->read_requests = __atomic_load_n(&s->read_requests, __ATOMIC_RELAXED);
	st->read_bytes = __atomic_load_n(&s->read_bytes, __ATOMIC_RELAXED);
	st->write_requests = __atomic_load_n(&s->write_requests, __ATOMIC_RELAXED);
	st->write_bytes = __atomic_load_n(&s->write_bytes, __ATOMIC_RELAXED);
	st->reads_peak = __atomic_load_n(&s->reads_peak, __ATOMIC_RELAXED);
	st->writes_peak = __atomic_load_n(&s->writes_peak, __ATOMIC_RELAXED);
}

/* File i's device if it is a pre-copy file, else NULL. */
static struct shared_precopy *precopy_of(const struct devmodel *m, unsigned i)
{
	return m && i < m->n && m->files[i].kind == DEVMODEL_PRECOPY ? &m->precopy[i] : NULL;
}

int devmodel_precopy_info(const struct devmodel *m, unsigned i, struct devmodel_precopy_info *out)
{
	struct shared_precopy *p = precopy_of(m, i);
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (!p)
		return -EINVAL;
	precopy_lock(p);
	precopy_produce(p, &m->files[i], mono_ns());
	if (p->phase == PRECOPY_STOP_COPY) {
		ret = -EINVAL;
	} else {
		out->initial_bytes = p->initial_left;
		out->dirty_bytes = p->dirty_left;
		out->stop_copy_bytes = p->initial_left + p->dirty_left + m->files[i].stop_copy_bytes;
		out->flags = p->flags;
		p->flags = 0;
	}
	precopy_unlock(p);
	return ret;
}

int devmodel_precopy_reinit(const struct devmodel *m, unsigned i, uint64_t bytes)
{
	struct shared_precopy *p = precopy_of(m, i);
	uint64_t produced;
	int ret = 0;

	if (!p)
		return -EINVAL;
	precopy_lock(p);
	precopy_produce(p, &m->files[i], mono_ns());
	if (p->phase == PRECOPY_STOP_COPY) {
		ret = -EINVAL;
	} else {
		produced = p->pos + p->initial_left + p->dirty_left;
		p->initial_left += min_u64(bytes, p->live_cap > produced ? p->live_cap - produced : 0);
		p->flags |= DEVMODEL_PRECOPY_REINIT;
	}
	precopy_unlock(p);
	return ret;
}

int devmodel_stop_copy(const struct devmodel *m, unsigned i)
{
	struct shared_precopy *p = precopy_of(m, i);
	int ret = 0;

	if (!p)
		return -EINVAL;
	precopy_lock(p);
	precopy_produce(p, &m->files[i], mono_ns());
	if (p->phase == PRECOPY_STOP_COPY) {
		ret = -EALREADY;
	} else {
		p->end = p->pos + p->initial_left + p->dirty_left + m->files[i].stop_copy_bytes;
		p->phase = PRECOPY_STOP_COPY;
	}
	precopy_unlock(p);
	return ret;
}

int devmodel_stream_length(const struct devmodel *m, unsigned i, uint64_t *len)
{
	struct shared_precopy *p = precopy_of(m, i);
	int ret = 0;

	*len = 0;
	if (!m || i >= m->n || m->files[i].kind == DEVMODEL_SINK)
		return -EINVAL;
	if (!p) {
		*len = m->sizes[i];
		return 0;
	}
	precopy_lock(p);
	if (p->phase == PRECOPY_STOP_COPY)
		*len = p->end;
	else
		ret = -EBUSY;
	precopy_unlock(p);
	return ret;
}

int devmodel_destroy(struct devmodel *m, struct devmodel_stats *final)
{
	int ret = 0;

	if (final)
		memset(final, 0, sizeof(*final));
	if (!m)
		return 0;
	if (m->stats && final)
		devmodel_get_stats(m, final);
	if (m->stop_fd >= 0) {
		/* A byte, not only EOF: processes forked since may hold copies of stop_fd. */
		if (write(m->stop_fd, "q", 1) < 0) {
			/* the server is gone already: waitpid below says how */
		}
		close(m->stop_fd);
	}
	if (m->server > 0) {
		struct rusage ru;
		int status;
		pid_t r;

		do {
			r = wait4(m->server, &status, 0, &ru);
		} while (r < 0 && errno == EINTR);
		if (r == m->server) {
			/* Serving only: mapping the sources at start-up is not the device's work. */
			if (final && m->stats)
				final->cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
					       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6 -
					       m->stats->startup_cpu_s;
			if (!WIFEXITED(status) || WEXITSTATUS(status))
				ret = -ECHILD;
		} else {
			ret = -ECHILD;
		}
	}
	if (m->dir[0]) {
		/* The server unmounts; this covers a server that died before mounting. */
		umount2(m->dir, MNT_DETACH);
		rmdir(m->dir);
	}
	if (m->stats)
		munmap(m->stats, sizeof(*m->stats));
	if (m->precopy)
		munmap(m->precopy, m->n * sizeof(*m->precopy));
	free(m->sizes);
	free(m->files);
	free(m->paths);
	free(m);
	return ret;
}
