/*
 * The I/O backend: the IOBackend key and ZINX_IO_BACKEND, the backend a
 * server reports, the fall-back to epoll where io_uring is refused, and
 * what only io_uring can get wrong: a receive buffer ring that runs dry
 * under many senders (nothing lost or reordered) and connections closed
 * with sends and receives in flight (memory released exactly once: run
 * it under ASan).
 *
 * Every test sets ZINX_IO_BACKEND itself, so the @io_uring run of this
 * program tests the same things.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 5000

/* ---- a log that remembers ------------------------------------------------ */

typedef struct log_book {
    pthread_mutex_t lock;
    char text[16384];
    size_t len;
    int warnings;
} log_book_t;

static void book_sink(zinx_log_level_t level, const char *message, void *udata)
{
    log_book_t *b = udata;
    pthread_mutex_lock(&b->lock);
    int n =
        snprintf(b->text + b->len, sizeof(b->text) - b->len, "%s\n", message);
    if (n > 0 && b->len + (size_t)n < sizeof(b->text))
        b->len += (size_t)n;
    if (level == ZINX_LOG_WARN)
        b->warnings++;
    pthread_mutex_unlock(&b->lock);
    tf_log_sink(level, message, NULL);
}

static bool book_has(log_book_t *b, const char *what)
{
    pthread_mutex_lock(&b->lock);
    bool found = strstr(b->text, what) != NULL;
    pthread_mutex_unlock(&b->lock);
    return found;
}

static void book_init(log_book_t *b)
{
    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->lock, NULL);
}

static zinx_server_t *server_on(uint32_t backend, log_book_t *book)
{
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.io_backend = backend;
    zinx_server_t *s = zinx_server_new(&cfg);
    assert_non_null(s);
    zinx_router_t r = {.handle = tf_echo};
    assert_int_equal(zinx_server_add_router(s, TC_ECHO_ID, &r), 0);
    assert_int_equal(zinx_server_set_log_sink(s, book_sink, book), 0);
    return s;
}

static void echo_once(int port)
{
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    TF_ASSERT_RC(tc_echo_call(fd, TLV, "ping", 4, tf_ms(T_IO)), 0);
    tc_close(fd);
}

/* ---- configuration ------------------------------------------------------- */

static void t_key_in_json(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[256];
    zinx_config_default(&cfg);
    assert_int_equal(cfg.io_backend, ZINX_IO_EPOLL);
    const char *ok = "{\"IOBackend\": \"io_uring\"}";
    assert_int_equal(zinx_config_load_json(&cfg, ok, strlen(ok), NULL, err,
                                           sizeof(err), NULL, NULL),
                     0);
    assert_int_equal(cfg.io_backend, ZINX_IO_URING);
    const char *bad = "{\"IOBackend\": \"kqueue\"}";
    assert_int_equal(zinx_config_load_json(&cfg, bad, strlen(bad), NULL, err,
                                           sizeof(err), NULL, NULL),
                     ZINX_ECONFIG);
    assert_non_null(strstr(err, "IOBackend"));
    assert_non_null(strstr(err, "unknown I/O backend \"kqueue\""));
    assert_int_equal(cfg.io_backend, ZINX_IO_URING); /* unchanged */
    const char *num = "{\"IOBackend\": 1}";
    assert_int_equal(zinx_config_load_json(&cfg, num, strlen(num), NULL, err,
                                           sizeof(err), NULL, NULL),
                     ZINX_ECONFIG);
    assert_non_null(strstr(err, "expected a string"));
}

static void t_key_in_code(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[256];
    zinx_config_default(&cfg);
    cfg.io_backend = 7;
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)),
                     ZINX_ECONFIG);
    assert_non_null(strstr(err, "IOBackend: unknown I/O backend 7"));
    cfg.io_backend = ZINX_IO_URING;
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);
}

/* An operator's typo is refused, not silently replaced by a default. */
static void t_env_invalid(void **state)
{
    (void)state;
    log_book_t book;
    book_init(&book);
    setenv("ZINX_IO_BACKEND", "uring", 1);
    zinx_server_t *s = server_on(ZINX_IO_EPOLL, &book);
    assert_int_equal(zinx_server_start(s), ZINX_ECONFIG);
    assert_true(book_has(&book, "ZINX_IO_BACKEND: unknown I/O backend"));
    zinx_server_free(s);
    unsetenv("ZINX_IO_BACKEND");
}

/* ---- the backend in use -------------------------------------------------- */

static void t_reports_backend(void **state)
{
    (void)state;
    const char *names[] = {"on epoll", "on io_uring"};
    for (uint32_t b = ZINX_IO_EPOLL; b <= ZINX_IO_URING; b++) {
        log_book_t book;
        book_init(&book);
        unsetenv("ZINX_IO_BACKEND");
        zinx_server_t *s = server_on(b, &book);
        int port = tf_start_or_fail(s);
        assert_true(book_has(&book, names[b]));
        echo_once(port);
        zinx_server_free(s);
    }
}

/* The variable beats the key, both ways. */
static void t_env_overrides(void **state)
{
    (void)state;
    log_book_t book;
    book_init(&book);
    setenv("ZINX_IO_BACKEND", "epoll", 1);
    zinx_server_t *s = server_on(ZINX_IO_URING, &book);
    int port = tf_start_or_fail(s);
    assert_true(book_has(&book, "on epoll"));
    echo_once(port);
    zinx_server_free(s);
    book_init(&book);
    setenv("ZINX_IO_BACKEND", "io_uring", 1);
    s = server_on(ZINX_IO_EPOLL, &book);
    port = tf_start_or_fail(s);
    assert_true(book_has(&book, "on io_uring"));
    echo_once(port);
    zinx_server_free(s);
    unsetenv("ZINX_IO_BACKEND");
}

/* A kernel that refuses io_uring (simulated: the seam makes every loop's
   open fail with EPERM, as a seccomp policy would) gets epoll, one
   warning, and a working server. */
static void t_fallback(void **state)
{
    (void)state;
    log_book_t book;
    book_init(&book);
    unsetenv("ZINX_IO_BACKEND");
    zinx_server_t *s = server_on(ZINX_IO_URING, &book);
    zinx__server_set_uring_test(s, 0, true);
    int port = tf_start_or_fail(s);
    assert_true(book_has(&book, "IOBackend io_uring refused by the kernel"));
    assert_true(book_has(&book, "on epoll"));
    assert_int_equal(book.warnings, 1);
    echo_once(port);
    zinx_server_free(s);
}

/* ---- the buffer ring running dry ----------------------------------------- */

enum { DRY_CONNS = 40, DRY_FRAMES = 32, DRY_LEN = 2000 };

static void dry_payload(uint8_t *p, int conn, int frame)
{
    for (int i = 0; i < DRY_LEN; i++)
        p[i] = (uint8_t)(conn * 31 + frame * 7 + i);
}

/* Every client sends all its frames at once into a loop with 4 receive
   buffers of 4 KiB: the ring runs dry over and over, receives stop with
   ENOBUFS and are armed again. Every reply must come back whole and in
   order. */
static void t_dry_ring(void **state)
{
    (void)state;
    log_book_t book;
    book_init(&book);
    unsetenv("ZINX_IO_BACKEND");
    zinx_server_t *s = server_on(ZINX_IO_URING, &book);
    zinx__server_set_uring_test(s, 4, false);
    int port = tf_start_or_fail(s);
    int fds[DRY_CONNS];
    static uint8_t wire[DRY_FRAMES * (DRY_LEN + ZINX_HEADER_LEN)];
    uint8_t payload[DRY_LEN];
    for (int c = 0; c < DRY_CONNS; c++) {
        fds[c] = tc_connect(port);
        assert_true(fds[c] >= 0);
    }
    for (int c = 0; c < DRY_CONNS; c++) {
        size_t off = 0;
        for (int f = 0; f < DRY_FRAMES; f++) {
            dry_payload(payload, c, f);
            off += frame_encode(TLV, TC_ECHO_ID, payload, DRY_LEN, wire + off);
        }
        TF_ASSERT_RC(tc_send_raw(fds[c], wire, off, tf_ms(T_IO)), 0);
    }
    uint8_t got[DRY_LEN];
    for (int c = 0; c < DRY_CONNS; c++) {
        for (int f = 0; f < DRY_FRAMES; f++) {
            uint32_t id, len;
            TF_ASSERT_RC(tc_recv_frame(fds[c], TLV, &id, got, sizeof(got), &len,
                                       tf_ms(T_IO)),
                         0);
            assert_int_equal(len, DRY_LEN);
            dry_payload(payload, c, f);
            assert_memory_equal(got, payload, DRY_LEN);
        }
        tc_close(fds[c]);
    }
    zinx_server_free(s);
}

/* ---- closing with requests in flight ------------------------------------- */

/* Closes the connection as soon as the reply is queued. */
static void reply_and_close(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *c = zinx_request_conn(req);
    zinx_conn_send_msg(c, 2, zinx_request_data(req),
                       zinx_request_data_len(req));
    zinx_conn_close_now(c);
}

/* Clients that flood without reading and then reset, and connections
   the server closes right after queueing a reply, all while receives
   and sends are in flight; then the server stops with whatever is left.
   The sanitizer builds check that no completion touches freed memory
   and that every handle and buffer is released. */
static void t_close_in_flight(void **state)
{
    (void)state;
    log_book_t book;
    book_init(&book);
    unsetenv("ZINX_IO_BACKEND");
    zinx_server_t *s = server_on(ZINX_IO_URING, &book);
    zinx_router_t r = {.handle = reply_and_close};
    assert_int_equal(zinx_server_add_router(s, 2, &r), 0);
    int port = tf_start_or_fail(s);
    enum { N = 20 };
    int fds[N];
    static uint8_t big[8 * (4000 + ZINX_HEADER_LEN)];
    uint8_t payload[4000];
    memset(payload, 'z', sizeof(payload));
    size_t off = 0;
    for (int f = 0; f < 8; f++)
        off +=
            frame_encode(TLV, TC_ECHO_ID, payload, sizeof(payload), big + off);
    tc_opts_t nb = {.nonblock = true};
    for (int i = 0; i < N; i++) {
        fds[i] = tc_connect_opts(port, &nb);
        assert_true(fds[i] >= 0);
    }
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++)
            tc_send_raw(fds[i], big, off, 50); /* as much as fits */
    }
    for (int i = 0; i < N; i += 2)
        tc_close_rst(fds[i]);
    for (int i = 1; i < N; i += 2) {
        TF_ASSERT_RC(tc_send_frame(fds[i], TLV, 2, payload, 100, tf_ms(T_IO)),
                     0);
    }
    /* The odd ones are closed by the server; some keep unread replies. */
    assert_int_equal(tf_stop_wait(s, 10000), 0);
    for (int i = 1; i < N; i += 2)
        tc_close(fds[i]);
    zinx_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_key_in_json),   cmocka_unit_test(t_key_in_code),
        cmocka_unit_test(t_env_invalid),   cmocka_unit_test(t_reports_backend),
        cmocka_unit_test(t_env_overrides), cmocka_unit_test(t_fallback),
        cmocka_unit_test(t_dry_ring),      cmocka_unit_test(t_close_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
