/*
 * Server fixture for the tests: a loopback configuration, a server with
 * a quiet log sink, its counters and bounded waits on them, the clock,
 * and scaling of counts and timeouts for slow (sanitizer) builds.
 *
 * Environment:
 *   ZINX_TEST_VERBOSE  set and not "0": server log records and the
 *                      tests' measured figures (tf_note) go to stderr.
 *   ZINX_TEST_SCALE    percent applied to the heavier counts (1..1000);
 *                      the default is 100, or less under sanitizers.
 *
 * Only the functions marked "fails the test" call cmocka (and
 * TF_ASSERT_RC); call those on the test's own thread. The rest may be
 * used from any thread.
 */
#ifndef TEST_FIXTURE_H
#define TEST_FIXTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "zinx.h"

/* ---- the build ---------------------------------------------------------- */

/* 1 in a ThreadSanitizer build, else 0 (usable in #if). */
#if defined(__SANITIZE_THREAD__) || defined(ZINX_SANITIZE_THREAD)
#define TF_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TF_TSAN 1
#endif
#endif
#ifndef TF_TSAN
#define TF_TSAN 0
#endif

/* 1 in an AddressSanitizer build, else 0 (usable in #if). */
#if defined(__SANITIZE_ADDRESS__) || defined(ZINX_SANITIZE_ADDRESS)
#define TF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TF_ASAN 1
#endif
#endif
#ifndef TF_ASAN
#define TF_ASAN 0
#endif

#define TF_SANITIZED (TF_ASAN || TF_TSAN)

/* A count or bound for this build: sanitizers run 3-15x slower. */
#define TF_PICK(plain, sanitized) (TF_SANITIZED ? (sanitized) : (plain))
#define TF_PICK3(plain, asan, tsan) \
    (TF_TSAN ? (tsan) : TF_ASAN ? (asan) : (plain))

/* Extra time granted to "within X ms" checks for scheduling noise. */
#define TF_SLACK_MS TF_PICK(400, 2000)

/* Percent applied to heavy counts (see above). */
int tf_scale_pct(void);

/* n scaled by tf_scale_pct(), at least min. */
int tf_scaled(int n, int min);

/* A timeout scaled up for slow builds (sanitizers). */
int tf_ms(int ms);

/* ---- output ------------------------------------------------------------- */

/* Nonzero when ZINX_TEST_VERBOSE asks for log output. */
int tf_verbose(void);

/* A measured figure: "# ...\n" on stderr, only when verbose. */
void tf_note(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Reports rc against want with both error names, as a test failure. */
#define TF_ASSERT_RC(rc, want)                                            \
    do {                                                                  \
        int tf_rc_ = (rc), tf_want_ = (want);                             \
        if (tf_rc_ != tf_want_)                                           \
            fail_msg("%s: got %d (%s), want %d (%s)", #rc, tf_rc_,        \
                     tf_rc_name(tf_rc_), tf_want_, tf_rc_name(tf_want_)); \
    } while (0)

/* zinx_err_name() for codes, "OK" for 0, "TC_EOF" for 1. */
const char *tf_rc_name(int rc);

/* ---- the clock ---------------------------------------------------------- */

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

/*
 * Joins t, waiting at most timeout_ms. Returns 0, or ETIMEDOUT (the
 * thread is then left running; the test should fail).
 */
int tf_join(pthread_t t, int timeout_ms, void **ret);

/* ---- servers ------------------------------------------------------------ */

typedef struct tf_server {
    zinx_server_t *srv;
    int port;                 /* set by tf_server_start() */
    atomic_uint log_count[4]; /* records per zinx_log_level_t */
} tf_server_t;

/*
 * Fills cfg for a loopback test server: the defaults, then Name
 * zinx-test, Host 127.0.0.1, TCPPort 0, MaxConn 64, WorkerPoolSize 2,
 * IOThreads 2, DrainTimeoutMs 5000.
 */
void tf_config(zinx_config_t *cfg);

/* tf_config() with MaxConn 100000, for hundreds or thousands of clients. */
void tf_config_many_conns(zinx_config_t *cfg);

/* Counts of a server's OnConnStart and OnConnStop runs. */
typedef struct tf_hooks {
    atomic_int starts, stops;
} tf_hooks_t;

/* Installs hooks on srv (before start) that count into *h; returns 0 or
   the API's error. */
int tf_count_hooks(zinx_server_t *srv, tf_hooks_t *h);

/* The stop hook alone (what tf_count_hooks installs): counts into
   ((tf_hooks_t *)udata)->stops. */
void tf_count_stop(zinx_conn_t *conn, void *udata);

/* A router step that answers with the same ID and payload. */
void tf_echo(zinx_request_t *req, void *udata);

/*
 * The fixture's log sink: counts each record in udata's log_count when
 * udata is a tf_server_t (NULL: no counting) and prints it when verbose.
 * A test's own sink may pass records on to it.
 */
void tf_log_sink(zinx_log_level_t level, const char *message, void *udata);

/*
 * Creates a server from cfg (NULL: tf_config()) with the fixture's log
 * sink installed. Returns NULL only when out of memory.
 */
tf_server_t *tf_server_new(const zinx_config_t *cfg);

/* Starts the server and records its port. Returns 0 or a ZINX_E* code. */
int tf_server_start(tf_server_t *ts);

/* Frees the server (stopping it) and the fixture. NULL is a no-op. */
void tf_server_free(tf_server_t *ts);

/*
 * A bare server from cfg with the fixture's log sink (not counting) and
 * tf_echo on TC_ECHO_ID, for tests that hold the zinx_server_t and free
 * it themselves. Fails the test when it cannot be made.
 */
zinx_server_t *tf_echo_server_new(const zinx_config_t *cfg);

/* Starts s and returns its port; fails the test with the error if not. */
int tf_start_or_fail(zinx_server_t *s);

/*
 * zinx_server_stop() then zinx_server_wait() (run on a helper thread so
 * a hang is reported instead of hanging the test). Returns wait's result,
 * or -ETIMEDOUT when it did not return within timeout_ms (the helper
 * thread is then abandoned).
 */
int tf_stop_wait(zinx_server_t *srv, int timeout_ms);

/* ---- counters and waits ------------------------------------------------- */

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
uint64_t tf_wait_stat_ge(const zinx_server_t *srv, size_t off, uint64_t want,
                         int timeout_ms);

/*
 * Polls pred(arg) every millisecond until it returns nonzero (returns 1)
 * or timeout_ms passes (returns 0).
 */
int tf_wait_until(int (*pred)(void *arg), void *arg, int timeout_ms);

/* Waits until *v >= want; returns the last value read. */
int tf_wait_atomic_ge(atomic_int *v, int want, int timeout_ms);

#endif /* TEST_FIXTURE_H */
