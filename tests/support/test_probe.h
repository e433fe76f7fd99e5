/*
 * Process and resource probes for the tests, read from /proc: memory,
 * threads, descriptors and CPU time of this process (or of a child), and
 * the descriptor limit.
 *
 * Each probe returns -1 when it cannot read its figure; nothing here
 * calls the test framework.
 */
#ifndef TEST_PROBE_H
#define TEST_PROBE_H

#include <sys/types.h>

/* VmRSS and VmSize of this process in KiB. */
long probe_rss_kib(void);
long probe_vmsize_kib(void);

/* Threads of this process. */
long probe_thread_count(void);

/*
 * The thread count once it is want again, waiting up to timeout_ms: a
 * thread that pthread_join() has returned for is still listed until the
 * kernel has finished reaping it. Returns the last count read.
 */
long probe_thread_count_back(long want, int timeout_ms);

/* Open descriptors of this process (not counting the one used to look). */
int probe_fd_count(void);

/*
 * CPU time (user + system, ms) of this process's threads whose name
 * starts with prefix; the server's threads are "zinx-io-N", "zinx-wk-N".
 */
long probe_threads_cpu_ms(const char *prefix);

/* CPU time (ms) of another process, all its threads. */
long probe_pid_cpu_ms(pid_t pid);

/*
 * Raises the soft RLIMIT_NOFILE to the hard one. Returns the soft limit
 * now in force (1 << 20 for "unlimited").
 */
long probe_raise_nofile(void);

#endif /* TEST_PROBE_H */
