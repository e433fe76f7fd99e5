/*
 * Server fixture for the tests: a loopback configuration, a server with
 * a quiet log sink, bounded waits for conditions, and scaling of counts
 * and timeouts for slow (sanitizer) builds.
 *
 * Environment:
 *   ZINX_TEST_VERBOSE  set and not "0": server log records go to stderr.
 *   ZINX_TEST_SCALE    percent applied to the heavier counts (1..1000);
 *                      the default is 100, or less under sanitizers.
 */
#ifndef TEST_FIXTURE_H
#define TEST_FIXTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "zinx.h"

typedef struct tf_server {
    zinx_server_t *srv;
    int port;                    /* set by tf_server_start() */
    atomic_uint log_count[4];    /* records per zinx_log_level_t */
} tf_server_t;

/*
 * Fills cfg for a loopback test server: the defaults, then Host
 * 127.0.0.1, TCPPort 0, MaxConn 64, WorkerPoolSize 2, IOThreads 2,
 * DrainTimeoutMs 5000.
 */
void tf_config(zinx_config_t *cfg);

/* A router step that answers with the same ID and payload. */
void tf_echo(zinx_request_t *req, void *udata);

/*
 * Creates a server from cfg (NULL: tf_config()) with the fixture's log
 * sink installed. Returns NULL only when out of memory.
 */
tf_server_t *tf_server_new(const zinx_config_t *cfg);

/* Starts the server and records its port. Returns 0 or a ZINX_E* code. */
int tf_server_start(tf_server_t *ts);

/* Frees the server (stopping it) and the fixture. NULL is a no-op. */
void tf_server_free(tf_server_t *ts);

/* The offset of a stats field, for tf_stat() and the waits. */
#define TF_STAT(field) offsetof(zinx_server_stats_t, field)

/* Reads one counter of the server's stats. */
uint64_t tf_stat(const zinx_server_t *srv, size_t off);

/*
 * Polls (every millisecond) until the counter equals want, or is at
 * least want for the _ge form, or timeout_ms passes. Returns the last
 * value read, so the caller can assert on it.
 */
uint64_t tf_wait_stat(const zinx_server_t *srv, size_t off, uint64_t want,
                      int timeout_ms);
uint64_t tf_wait_stat_ge(const zinx_server_t *srv, size_t off,
                         uint64_t want, int timeout_ms);

/*
 * Polls pred(arg) every millisecond until it returns nonzero (returns 1)
 * or timeout_ms passes (returns 0).
 */
int tf_wait_until(int (*pred)(void *arg), void *arg, int timeout_ms);

/* Waits until *v >= want; returns the last value read. */
int tf_wait_atomic_ge(atomic_int *v, int want, int timeout_ms);

/* Monotonic milliseconds and microseconds (CLOCK_MONOTONIC). */
uint64_t tf_now_ms(void);
uint64_t tf_now_us(void);

/*
 * Milliseconds from now until end_ms (a tf_now_ms() value): 0 once it
 * has passed, at most 1000000, so it always fits poll()'s timeout.
 */
int tf_ms_left(uint64_t end_ms);

/* Sleeps for ms milliseconds (for handlers that simulate work). */
void tf_sleep_ms(int ms);

/* Sleeps for us microseconds. */
void tf_sleep_us(int us);

/* Percent applied to heavy counts (see above). */
int tf_scale_pct(void);

/* n scaled by tf_scale_pct(), at least min. */
int tf_scaled(int n, int min);

/* A timeout scaled up for slow builds (sanitizers). */
int tf_ms(int ms);

/* Nonzero when ZINX_TEST_VERBOSE asks for log output. */
int tf_verbose(void);

/*
 * Joins t, waiting at most timeout_ms. Returns 0, or ETIMEDOUT (the
 * thread is then left running; the test should fail).
 */
int tf_join(pthread_t t, int timeout_ms, void **ret);

/*
 * zinx_server_stop() then zinx_server_wait() (run on a helper thread so
 * a hang is reported instead of hanging the test). Returns wait's result,
 * or -ETIMEDOUT when it did not return within timeout_ms (the helper
 * thread is then abandoned).
 */
int tf_stop_wait(zinx_server_t *srv, int timeout_ms);

/* Reports rc against want with both error names, as a test failure. */
#define TF_ASSERT_RC(rc, want)                                              \
    do {                                                                    \
        int tf_rc_ = (rc), tf_want_ = (want);                               \
        if (tf_rc_ != tf_want_)                                             \
            fail_msg("%s: got %d (%s), want %d (%s)", #rc, tf_rc_,          \
                     tf_rc_name(tf_rc_), tf_want_, tf_rc_name(tf_want_));   \
    } while (0)

/* zinx_err_name() for codes, "OK" for 0, "TC_EOF" for 1. */
const char *tf_rc_name(int rc);

#endif /* TEST_FIXTURE_H */
