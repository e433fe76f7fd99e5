/*
 * Static pages on the WebSocket port (zinx_server_add_http_page): a GET
 * or HEAD of a page's path gets the page whole and the connection ends,
 * without hooks or refusal counts; everything else on the port behaves
 * as before (404, 426, the upgrade). A page larger than the socket's
 * buffers reaches a reader that takes it slowly, whole. Over TLS too
 * (https on the wss listener), with a certificate the openssl CLI makes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"
#include "zinx.h"

#define WS_PATH "/ws"
#define BIG (2u << 20)
#define HTML "<!doctype html><title>map</title><p>hello</p>\n"

static atomic_int starts, stops, failure_logs;
static uint8_t *big;

static void on_start(zinx_conn_t *c, void *u)
{
    (void)c;
    (void)u;
    atomic_fetch_add(&starts, 1);
}

static void on_stop(zinx_conn_t *c, void *u)
{
    (void)c;
    (void)u;
    atomic_fetch_add(&stops, 1);
}

/* Counts the log lines that speak of a failure or refusal: a page served
   must give none. */
static void sink(zinx_log_level_t level, const char *message, void *udata)
{
    if (strstr(message, "fail") != NULL || strstr(message, "refus") != NULL)
        atomic_fetch_add(&failure_logs, 1);
    tf_log_sink(level, message, udata);
}

static void reset_counts(void)
{
    atomic_store(&starts, 0);
    atomic_store(&stops, 0);
    atomic_store(&failure_logs, 0);
}

/* A WebSocket-only server on WsPath with pages "/" and "/big". */
static zinx_server_t *page_server(const char *cert, const char *key)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.mode = ZINX_MODE_WEBSOCKET;
    cfg.ws_port = 0;
    snprintf(cfg.ws_path, sizeof(cfg.ws_path), WS_PATH);
    if (cert != NULL) {
        snprintf(cfg.cert_file, sizeof(cfg.cert_file), "%s", cert);
        snprintf(cfg.private_key_file, sizeof(cfg.private_key_file), "%s", key);
    }
    zinx_server_t *s = tf_echo_server_new(&cfg);
    assert_int_equal(zinx_server_set_log_sink(s, sink, NULL), 0);
    zinx_server_on_conn_start(s, on_start, NULL);
    zinx_server_on_conn_stop(s, on_stop, NULL);
    reset_counts();
    assert_int_equal(zinx_server_add_http_page(s, "/",
                                               "text/html; charset=utf-8", HTML,
                                               strlen(HTML)),
                     0);
    assert_int_equal(zinx_server_add_http_page(
                         s, "/big", "application/octet-stream", big, BIG),
                     0);
    assert_int_equal(zinx_server_start(s), 0);
    return s;
}

/* The response a page's GET must get, byte for byte. */
static size_t expected(char *out, size_t cap, const char *type, size_t len,
                       const void *body)
{
    int n = snprintf(out, cap,
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nCache-Control: no-cache\r\n"
                     "Connection: close\r\n\r\n",
                     type, len);
    assert_true(n > 0 && (size_t)n + (body != NULL ? len : 0) <= cap);
    if (body != NULL)
        memcpy(out + n, body, len);
    return (size_t)n + (body != NULL ? len : 0);
}

/* Sends request and reads until the server closes: the bytes read.
   pause_ms > 0 reads 16 KiB at a time with a pause between (a slow
   reader, its receive buffer made small). */
static size_t fetch(int port, const char *request, uint8_t *out, size_t cap,
                    int pause_ms)
{
    tc_opts_t o = {.rcvbuf = pause_ms > 0 ? 4096 : 0};
    int fd = tc_connect_opts(port, &o);
    assert_true(fd >= 0);
    assert_int_equal(tc_send_raw(fd, request, strlen(request), tf_ms(5000)), 0);
    size_t got = 0;
    for (;;) {
        size_t ask = cap - got;
        if (pause_ms > 0 && ask > 16384)
            ask = 16384;
        ssize_t n = tc_recv_some(fd, out + got, ask, tf_ms(10000));
        if (n == 0)
            break; /* the server closed: the page is whole */
        if (n < 0)
            fail_msg("reading the page: %s after %zu bytes", strerror((int)-n),
                     got);
        got += (size_t)n;
        assert_true(got < cap);
        if (pause_ms > 0)
            tf_sleep_ms(pause_ms);
    }
    tc_close(fd);
    return got;
}

static void stop(zinx_server_t *s, zinx_server_stats_t *st)
{
    zinx_server_stats(s, st);
    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    zinx_server_free(s);
}

/* GET and HEAD of "/", with a query too: the exact responses; no hook
   ran, nothing was refused or logged as a failure. */
static void test_get_and_head(void **state)
{
    (void)state;
    zinx_server_t *s = page_server(NULL, NULL);
    int port = zinx_server_ws_port(s);
    static uint8_t got[4096];
    static char want[4096];
    size_t wlen = expected(want, sizeof(want), "text/html; charset=utf-8",
                           strlen(HTML), HTML);
    size_t n =
        fetch(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", got, sizeof(got), 0);
    assert_int_equal(n, wlen);
    assert_memory_equal(got, want, wlen);
    n = fetch(port, "GET /?t=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", got,
              sizeof(got), 0);
    assert_int_equal(n, wlen);
    assert_memory_equal(got, want, wlen);
    wlen = expected(want, sizeof(want), "text/html; charset=utf-8",
                    strlen(HTML), NULL);
    n = fetch(port, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", got, sizeof(got), 0);
    assert_int_equal(n, wlen);
    assert_memory_equal(got, want, wlen);
    zinx_server_stats_t st;
    stop(s, &st);
    assert_int_equal(atomic_load(&starts), 0);
    assert_int_equal(atomic_load(&stops), 0);
    assert_int_equal(st.ws_refused, 0);
    assert_int_equal(st.handshake_failed, 0);
    assert_int_equal(st.timeouts, 0);
    assert_int_equal(st.closed, 0);
    assert_int_equal(atomic_load(&failure_logs), 0);
}

static void expect_status(int port, const char *request, const char *status)
{
    static uint8_t got[4096];
    size_t n = fetch(port, request, got, sizeof(got), 0);
    got[n] = '\0';
    if (strncmp((char *)got, status, strlen(status)) != 0)
        fail_msg("%s: got %.60s, want %s", request, got, status);
}

/* Unknown paths, WsPath without an upgrade, an upgrade on a page's path,
   a page's POST: refused as without pages. WsPath still upgrades. */
static void test_everything_else_unchanged(void **state)
{
    (void)state;
    zinx_server_t *s = page_server(NULL, NULL);
    int port = zinx_server_ws_port(s);
    expect_status(port, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
                  "HTTP/1.1 404 ");
    expect_status(port, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 426 ");
    expect_status(port, "POST / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 ");
    expect_status(port,
                  "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                  "HTTP/1.1 404 ");
    zinx_sync_opts_t o = {.ws_path = WS_PATH};
    zinx_sync_client_t *c = NULL;
    assert_int_equal(zinx_sync_client_open("127.0.0.1", port, &o, &c), 0);
    zinx_msg_t m;
    assert_int_equal(zinx_sync_client_call(c, TC_ECHO_ID, "hi", 2, TC_ECHO_ID,
                                           (uint32_t)tf_ms(5000), &m),
                     0);
    assert_int_equal(m.len, 2);
    zinx_sync_msg_free(&m);
    zinx_sync_client_free(c);
    assert_true(tf_wait_atomic_ge(&stops, 1, tf_ms(5000)) >= 1);
    zinx_server_stats_t st;
    stop(s, &st);
    assert_int_equal(st.ws_refused, 4);
    assert_int_equal(atomic_load(&starts), 1); /* the upgrade's only */
    assert_int_equal(atomic_load(&stops), 1);
}

/* 2 MiB to a reader with a 4 KiB receive buffer that takes 16 KiB at a
   time: the server waits for room, and the page arrives whole. */
static void test_big_page_slow_reader(void **state)
{
    (void)state;
    zinx_server_t *s = page_server(NULL, NULL);
    size_t cap = BIG + 4096;
    uint8_t *got = malloc(cap);
    assert_non_null(got);
    char head[512];
    size_t hlen =
        expected(head, sizeof(head), "application/octet-stream", BIG, NULL);
    size_t n =
        fetch(zinx_server_ws_port(s), "GET /big HTTP/1.1\r\nHost: x\r\n\r\n",
              got, cap, TF_PICK(1, 2));
    assert_int_equal(n, hlen + BIG);
    assert_memory_equal(got, head, hlen);
    assert_memory_equal(got + hlen, big, BIG);
    free(got);
    zinx_server_stats_t st;
    stop(s, &st);
    assert_int_equal(atomic_load(&starts), 0);
    assert_int_equal(st.timeouts, 0);
    assert_int_equal(st.ws_refused, 0);
    assert_int_equal(atomic_load(&failure_logs), 0);
}

/* The call's refusals, and its state rule. */
static void test_api_errors(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.mode = ZINX_MODE_WEBSOCKET;
    cfg.ws_port = 0;
    snprintf(cfg.ws_path, sizeof(cfg.ws_path), WS_PATH);
    zinx_server_t *s = tf_echo_server_new(&cfg);
    const char *t = "text/plain";
    TF_ASSERT_RC(zinx_server_add_http_page(NULL, "/", t, "x", 1), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_add_http_page(s, NULL, t, "x", 1), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_add_http_page(s, "/", NULL, "x", 1), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_add_http_page(s, "/", t, NULL, 1), ZINX_EINVAL);
    const char *bad_paths[] = {"",     "x",     "/a b", "/a\r\nX: y",
                               "/a?b", "/a\tb", WS_PATH};
    for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++)
        TF_ASSERT_RC(zinx_server_add_http_page(s, bad_paths[i], t, "x", 1),
                     ZINX_EINVAL);
    static char long_path[ZINX_CONFIG_PATH_MAX + 1];
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[0] = '/';
    TF_ASSERT_RC(zinx_server_add_http_page(s, long_path, t, "x", 1),
                 ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_add_http_page(s, "/", "", "x", 1), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_add_http_page(s, "/", "text/html\r\nX: y", "x", 1),
                 ZINX_EINVAL);
    TF_ASSERT_RC(
        zinx_server_add_http_page(s, "/", t, big, ZINX_HTTP_PAGE_MAX + 1),
        ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_add_http_page(s, "/", t, big, ZINX_HTTP_PAGE_MAX),
                 0);
    TF_ASSERT_RC(zinx_server_add_http_page(s, "/", t, "x", 1), ZINX_EEXIST);
    TF_ASSERT_RC(zinx_server_add_http_page(s, "/empty", t, NULL, 0), 0);
    assert_int_equal(zinx_server_start(s), 0);
    TF_ASSERT_RC(zinx_server_add_http_page(s, "/late", t, "x", 1), ZINX_ESTATE);
    static uint8_t got[1024];
    size_t n =
        fetch(zinx_server_ws_port(s), "GET /empty HTTP/1.1\r\nHost: x\r\n\r\n",
              got, sizeof(got), 0);
    static char want[512];
    size_t wlen = expected(want, sizeof(want), t, 0, "");
    assert_int_equal(n, wlen);
    assert_memory_equal(got, want, wlen);
    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    zinx_server_free(s); /* the pages go with it (ASan checks) */
}

/* ---- https on the wss listener ------------------------------------------ */

static char dir[256];

static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* A self-signed certificate (the client below does not verify it). */
static bool make_cert(void)
{
    snprintf(dir, sizeof(dir), "/tmp/zinx-test-pages-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return false;
    return sh("command -v openssl >/dev/null && cd '%s' && "
              "openssl req -x509 -newkey ec -pkeyopt "
              "ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem "
              "-days 30 -subj /CN=localhost >/dev/null 2>&1",
              dir) == 0;
}

/* GET over TLS: what the server sent until its close_notify or EOF. */
static size_t fetch_tls(int port, const char *request, uint8_t *out, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL *ssl = SSL_new(ctx);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    SSL_set_fd(ssl, fd);
    assert_int_equal(SSL_connect(ssl), 1);
    assert_int_equal(SSL_write(ssl, request, (int)strlen(request)),
                     (int)strlen(request));
    size_t got = 0;
    for (;;) {
        int n = SSL_read(ssl, out + got, (int)(cap - got));
        if (n <= 0)
            break;
        got += (size_t)n;
        assert_true(got < cap);
    }
    /* The server ended with close_notify, not a cut. */
    assert_int_equal(SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN,
                     SSL_RECEIVED_SHUTDOWN);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    tc_close(fd);
    return got;
}

static void test_https_page(void **state)
{
    (void)state;
    if (!make_cert()) {
        const char *ci = getenv("CI");
        if (ci != NULL && strcmp(ci, "true") == 0)
            fail_msg("openssl missing under CI");
        skip();
    }
    char cert[300], key[300];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    zinx_server_t *s = page_server(cert, key);
    size_t cap = BIG + 4096;
    uint8_t *got = malloc(cap);
    assert_non_null(got);
    char want[512];
    size_t wlen = expected(want, sizeof(want), "text/html; charset=utf-8",
                           strlen(HTML), HTML);
    size_t n = fetch_tls(zinx_server_ws_port(s),
                         "GET / HTTP/1.1\r\nHost: x\r\n\r\n", got, cap);
    assert_int_equal(n, wlen);
    assert_memory_equal(got, want, wlen);
    size_t hlen =
        expected(want, sizeof(want), "application/octet-stream", BIG, NULL);
    n = fetch_tls(zinx_server_ws_port(s),
                  "GET /big HTTP/1.1\r\nHost: x\r\n\r\n", got, cap);
    assert_int_equal(n, hlen + BIG);
    assert_memory_equal(got + hlen, big, BIG);
    free(got);
    zinx_server_stats_t st;
    stop(s, &st);
    sh("rm -rf '%s'", dir);
    assert_int_equal(atomic_load(&starts), 0);
    assert_int_equal(st.tls_failed, 0);
    assert_int_equal(st.ws_refused, 0);
    assert_int_equal(atomic_load(&failure_logs), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    big = malloc(ZINX_HTTP_PAGE_MAX + 1);
    assert_non_null(big);
    uint32_t r = 12345;
    for (size_t i = 0; i < ZINX_HTTP_PAGE_MAX + 1; i++)
        big[i] = (uint8_t)tc_rand(&r);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_head),
        cmocka_unit_test(test_everything_else_unchanged),
        cmocka_unit_test(test_big_page_slow_reader),
        cmocka_unit_test(test_api_errors),
        cmocka_unit_test(test_https_page),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(big);
    return rc;
}
