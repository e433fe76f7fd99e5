/*
 * T25, the blocking client against a server that behaves like Zinx's:
 * heartbeats both ways, floods of unsolicited messages, a server slower
 * than the sender.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "test_client.h"
#include "test_fixture.h"

#define ID_FLOOD 50u
#define ID_FLOOD_ITEM 51u
#define ID_FLOOD_END 52u
#define ID_SLOW 60u
#define ID_STALL 61u
#define FLOOD_N 500u /* 2 MiB: within the default OutputHardLimit */

static uint8_t page[4096];
static atomic_long slow_seen;

/* Answers one request with FLOOD_N 4 KiB messages, then an end mark:
   pushed in one burst, so it must stay below OutputHardLimit even when
   the client does not read at all. */
static void flood_handle(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *c = zinx_request_conn(req);
    for (uint32_t i = 0; i < FLOOD_N; i++)
        zinx_conn_send_msg(c, ID_FLOOD_ITEM, page, sizeof(page));
    zinx_conn_send_msg(c, ID_FLOOD_END, "end", 3);
}

/* A slow consumer: 1 ms per message. */
static void slow_handle(zinx_request_t *req, void *udata)
{
    (void)req;
    (void)udata;
    tf_sleep_ms(1);
    atomic_fetch_add(&slow_seen, 1);
}

/* Stops taking anything for a while. */
static void stall_handle(zinx_request_t *req, void *udata)
{
    (void)req;
    (void)udata;
    tf_sleep_ms(1500);
}

static zinx_server_t *server(uint32_t hb_interval_ms, int *port)
{
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.worker_pool_size = 1;
    cfg.heartbeat_interval_ms = hb_interval_ms;
    cfg.heartbeat_max = 1;
    /* Large enough flood output stays within the default limits. */
    zinx_server_t *s = tf_echo_server_new(&cfg);
    zinx_router_t f = {.handle = flood_handle};
    zinx_router_t sl = {.handle = slow_handle};
    zinx_router_t st = {.handle = stall_handle};
    assert_int_equal(zinx_server_add_router(s, ID_FLOOD, &f), 0);
    assert_int_equal(zinx_server_add_router(s, ID_SLOW, &sl), 0);
    assert_int_equal(zinx_server_add_router(s, ID_STALL, &st), 0);
    *port = tf_start_or_fail(s);
    return s;
}

/* With its heartbeat on, the client keeps a connection that a server
   with HeartbeatMax 1 s cuts otherwise; the server's heartbeats never
   reach recv. */
static void t25_heartbeat(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = server(200, &port);
    zinx_sync_opts_t o = {.heartbeat_interval_ms = 300};
    zinx_sync_client_t *c;
    assert_int_equal(zinx_sync_client_open("127.0.0.1", port, &o, &c), 0);
    zinx_sync_client_t *quiet;
    assert_int_equal(zinx_sync_client_open("127.0.0.1", port, NULL, &quiet), 0);
    zinx_msg_t m;
    /* 2.5 s: the server beats ~12 times; none is queued for recv. */
    assert_int_equal(zinx_sync_client_recv(c, -1, 2500, &m), ZINX_ETIMEDOUT);
    assert_int_equal(zinx_sync_client_queued_bytes(c), 0);
    assert_int_equal(
        zinx_sync_client_call(c, TC_ECHO_ID, "ok", 2, TC_ECHO_ID, 2000, &m), 0);
    zinx_sync_msg_free(&m);
    /* The one without a heartbeat was cut as not alive. */
    int rc = zinx_sync_client_recv(quiet, -1, 100, &m);
    assert_true(rc != 0 && rc != ZINX_ETIMEDOUT);
    assert_int_equal(tf_stat(s, TF_STAT(dead_peers)), 1);
    zinx_sync_client_free(quiet);
    zinx_sync_client_free(c);
    zinx_server_free(s);
}

/* Messages nobody asks for fill the queue up to its bound, then the
   client stops reading; taking them lets the rest in. */
static void t25_queue_bounded(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = server(0, &port);
    zinx_sync_opts_t o = {.max_queued_bytes = 64 * 1024};
    zinx_sync_client_t *c;
    assert_int_equal(zinx_sync_client_open("127.0.0.1", port, &o, &c), 0);
    assert_int_equal(zinx_sync_client_send(c, ID_FLOOD, NULL, 0), 0);
    zinx_msg_t m;
    assert_int_equal(zinx_sync_client_recv(c, ID_FLOOD_END, 1000, &m),
                     ZINX_ETIMEDOUT);
    size_t queued = zinx_sync_client_queued_bytes(c);
    tf_note("T25: %zu bytes queued (bound 65536)", queued);
    assert_true(queued > 0);
    assert_true(queued <= 64 * 1024 + sizeof(page) + 256);
    for (uint32_t i = 0; i < FLOOD_N; i++) {
        assert_int_equal(zinx_sync_client_recv(c, ID_FLOOD_ITEM, 5000, &m), 0);
        assert_int_equal(m.len, sizeof(page));
        zinx_sync_msg_free(&m);
        assert_true(zinx_sync_client_queued_bytes(c) <=
                    64 * 1024 + sizeof(page) + 256);
    }
    assert_int_equal(zinx_sync_client_recv(c, ID_FLOOD_END, 5000, &m), 0);
    zinx_sync_msg_free(&m);
    assert_int_equal(tf_stat(s, TF_STAT(slow_readers)), 0);
    zinx_sync_client_free(c);
    zinx_server_free(s);
}

/* A sender faster than the server waits instead of failing with
   ZINX_ENOBUFS; with a timeout it gives up cleanly. */
static void t25_send_waits_for_room(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = server(0, &port);
    zinx_sync_client_t *c;
    assert_int_equal(zinx_sync_client_open("127.0.0.1", port, NULL, &c), 0);
    atomic_store(&slow_seen, 0);
    long n = TF_PICK(3000, 1500);
    for (long i = 0; i < n; i++)
        assert_int_equal(zinx_sync_client_send(c, ID_SLOW, page, sizeof(page)),
                         0);
    long seen = (long)tf_wait_stat_ge(s, TF_STAT(msgs_in), (uint64_t)n, 20000);
    assert_int_equal(seen, n);

    /* The server stops taking anything: sends time out, none fails. */
    assert_int_equal(zinx_sync_client_send(c, ID_STALL, NULL, 0), 0);
    int rc = 0;
    long sent = 0;
    while (rc == 0 && sent < 100000) {
        rc = zinx_sync_client_send_timeout(c, ID_SLOW, page, sizeof(page), 200);
        if (rc == 0)
            sent++;
    }
    tf_note("T25: %ld sends before the timeout", sent);
    assert_int_equal(rc, ZINX_ETIMEDOUT);
    zinx_sync_client_free(c);
    zinx_server_free(s);
}

int main(void)
{
    memset(page, 'z', sizeof(page));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t25_heartbeat),
        cmocka_unit_test(t25_queue_bounded),
        cmocka_unit_test(t25_send_waits_for_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
