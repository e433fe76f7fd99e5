/*
 * TLS under WebSocket (wss) and under TCP on one server: Mode "" with
 * CertFile puts TLS under both listeners, and both kinds of connection
 * share the hooks. Our own client speaks wss with a verifying TLS client;
 * headless Chromium, trusting the test certificate by its key, loads a
 * page that talks Zinx frames to the server over wss://.
 *
 * The certificate is made at test time with the openssl CLI; without
 * openssl, node, npm's ws package or chromium the test is skipped, and
 * fails under CI (CI=true).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"
#include "zinx.h"

extern char **environ;

static char dir[256];

static bool under_ci(void)
{
    const char *ci = getenv("CI");
    return ci != NULL && strcmp(ci, "true") == 0;
}

static void need(bool have, const char *what)
{
    if (have)
        return;
    if (under_ci())
        fail_msg("%s missing under CI", what);
    skip();
}

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

static const char *file(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* A CA and a server certificate for localhost and 127.0.0.1 by it. */
static int make_pki(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/zinx-test-wss-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    if (sh("command -v openssl >/dev/null") != 0)
        return 0; /* each test reports it */
    return sh("set -e; cd '%s'\n"
              "openssl genpkey -algorithm EC -pkeyopt "
              "ec_paramgen_curve:P-256 -out ca.key 2>/dev/null\n"
              "openssl req -x509 -new -key ca.key -days 3650 "
              "-subj '/CN=Zinx wss test CA' -out ca.pem 2>/dev/null\n"
              "openssl genpkey -algorithm EC -pkeyopt "
              "ec_paramgen_curve:P-256 -out server.key 2>/dev/null\n"
              "openssl req -new -key server.key -subj '/CN=localhost' "
              "-out server.csr 2>/dev/null\n"
              "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext\n"
              "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
              "-CAcreateserial -days 3650 -extfile ext -out server.pem "
              "2>/dev/null\n",
              dir) == 0
               ? 0
               : -1;
}

static int drop_pki(void **state)
{
    (void)state;
    sh("rm -rf '%s'", dir);
    return 0;
}

static atomic_int starts, stops;

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

/* Mode "" with TLS: TCPPort is TLS, WsPort is wss on /zinx. */
static zinx_server_t *tls_server(void)
{
    need(access(file("server.pem"), R_OK) == 0, "openssl");
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.mode = ZINX_MODE_TCP_WS;
    cfg.ws_port = 0;
    snprintf(cfg.ws_path, sizeof(cfg.ws_path), "/zinx");
    snprintf(cfg.cert_file, sizeof(cfg.cert_file), "%s", file("server.pem"));
    snprintf(cfg.private_key_file, sizeof(cfg.private_key_file), "%s",
             file("server.key"));
    zinx_server_t *s = tf_echo_server_new(&cfg);
    zinx_server_on_conn_start(s, on_start, NULL);
    zinx_server_on_conn_stop(s, on_stop, NULL);
    atomic_store(&starts, 0);
    atomic_store(&stops, 0);
    assert_int_equal(zinx_server_start(s), 0);
    return s;
}

static zinx_sync_client_t *open_client(int port, zinx_tls_client_t *tls,
                                       const char *ws_path)
{
    zinx_sync_opts_t o;
    memset(&o, 0, sizeof(o));
    o.connect_timeout_ms = (uint32_t)tf_ms(10000);
    o.tls = tls;
    o.ws_path = ws_path;
    zinx_sync_client_t *c = NULL;
    int rc = zinx_sync_client_open("127.0.0.1", port, &o, &c);
    if (rc != 0)
        print_error("open port %d: %s\n", port, zinx_strerror(rc));
    assert_int_equal(rc, 0);
    return c;
}

static void echo(zinx_sync_client_t *c, size_t size)
{
    char *data = malloc(size);
    assert_non_null(data);
    for (size_t i = 0; i < size; i++)
        data[i] = (char)(i * 7 + size);
    zinx_msg_t reply;
    assert_int_equal(zinx_sync_client_call(c, TC_ECHO_ID, data, (uint32_t)size,
                                           TC_ECHO_ID, (uint32_t)tf_ms(10000),
                                           &reply),
                     0);
    assert_int_equal(reply.len, size);
    assert_memory_equal(reply.data, data, size);
    zinx_sync_msg_free(&reply);
    free(data);
}

/* Our client over wss and over TLS on TCP, to one server: both verified
   against the test CA, both seen by the same hooks. */
static void test_wss_and_tls_share_a_server(void **state)
{
    (void)state;
    zinx_server_t *s = tls_server();
    zinx_tls_client_t *tls = zinx_tls_client_new();
    assert_non_null(tls);
    assert_int_equal(zinx_tls_client_set_ca_file(tls, file("ca.pem")), 0);
    zinx_sync_client_t *ws = open_client(zinx_server_ws_port(s), tls, "/zinx");
    zinx_sync_client_t *tcp = open_client(zinx_server_port(s), tls, NULL);
    echo(ws, 16);
    echo(tcp, 16);
    echo(ws, 3000); /* frames across TLS records and WebSocket messages */
    echo(ws, 4000);
    echo(tcp, 4000);
    assert_int_equal(atomic_load(&starts), 2);
    zinx_sync_client_free(ws);
    zinx_sync_client_free(tcp);
    zinx_tls_client_free(tls);
    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    zinx_server_stats_t st;
    zinx_server_stats(s, &st);
    assert_int_equal(st.tls_failed, 0);
    assert_int_equal(st.ws_refused, 0);
    assert_int_equal(atomic_load(&stops), 2);
    zinx_server_free(s);
}

/* A wss client that does not trust the server's certificate is refused
   by its own TLS layer before any upgrade is sent. */
static void test_wss_untrusted_refused(void **state)
{
    (void)state;
    zinx_server_t *s = tls_server();
    zinx_tls_client_t *tls = zinx_tls_client_new(); /* system CAs only */
    assert_non_null(tls);
    zinx_sync_opts_t o;
    memset(&o, 0, sizeof(o));
    o.connect_timeout_ms = (uint32_t)tf_ms(5000);
    o.tls = tls;
    o.ws_path = "/zinx";
    zinx_sync_client_t *c = NULL;
    int rc = zinx_sync_client_open("127.0.0.1", zinx_server_ws_port(s), &o, &c);
    assert_int_not_equal(rc, 0);
    assert_null(c);
    zinx_tls_client_free(tls);
    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    assert_int_equal(atomic_load(&starts), 0);
    zinx_server_free(s);
}

/* The browser: Chromium trusts the server's key (its SPKI hash) and its
   page sends frames built in JavaScript over wss://. */
static void test_chromium_wss(void **state)
{
    (void)state;
    const char *data = getenv("ZINX_TEST_DATA_DIR");
    assert_non_null(data);
    const char *chromium = getenv("ZINX_TEST_CHROMIUM");
    if (chromium == NULL)
        chromium = "/usr/bin/chromium";
    need(sh("command -v node >/dev/null") == 0 &&
             sh("bash '%s/../node/install.sh' >&2", data) == 0 &&
             access(chromium, X_OK) == 0,
         "node, npm's ws package or chromium");
    zinx_server_t *s = tls_server();
    assert_int_equal(sh("openssl x509 -in '%s' -pubkey -noout | openssl pkey "
                        "-pubin -outform der | openssl dgst -sha256 -binary "
                        "| openssl base64 -A > '%s'",
                        file("server.pem"), file("spki")),
                     0);
    char spki[128] = "";
    FILE *f = fopen(file("spki"), "r");
    assert_non_null(f);
    assert_non_null(fgets(spki, sizeof(spki), f));
    fclose(f);
    char flags[256], url[128], script[4096];
    snprintf(flags, sizeof(flags), "--ignore-certificate-errors-spki-list=%s",
             spki);
    snprintf(url, sizeof(url), "wss://127.0.0.1:%d/zinx",
             zinx_server_ws_port(s));
    snprintf(script, sizeof(script), "%s/../node/browser.js", data);
    setenv("ZINX_TEST_CHROMIUM_FLAGS", flags, 1);
    char *argv[] = {"node", script, url, NULL};
    pid_t pid;
    assert_int_equal(posix_spawnp(&pid, "node", NULL, NULL, argv, environ), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    zinx_server_stats_t st;
    zinx_server_stats(s, &st);
    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    zinx_server_free(s);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(st.ws_refused, 0);
    assert_true(atomic_load(&starts) >= 1);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wss_and_tls_share_a_server),
        cmocka_unit_test(test_wss_untrusted_refused),
        cmocka_unit_test(test_chromium_wss),
    };
    return cmocka_run_group_tests(tests, make_pki, drop_pki);
}
