/*
 * TLS: servers with CertFile against `openssl s_client`, Python's ssl
 * module and our own clients; client-side verification; client
 * certificates; handshake failures and timeouts; large messages,
 * back-pressure and close_notify through TLS.
 *
 * The certificates are made at test time with the openssl CLI in a
 * fresh temporary directory: nothing with a private key is committed,
 * and nothing expires. A test CA signs the server's (SAN DNS:localhost,
 * IP:127.0.0.1) and a client's certificate; a second CA, which nobody
 * trusts, signs a rogue server certificate. Under CI=true a missing
 * openssl or python3 fails the test instead of skipping it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"
#include "zinx.h"

#define ID_FLOOD 7u
#define ID_CLOSE 8u

static char dir[256];

/* ---- tools ---------------------------------------------------------------
 */

static int have(const char *tool)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* Skips the test when a peer program is missing, fails it under CI. */
#define NEED(tool)                                                         \
    do {                                                                   \
        if (!have(tool)) {                                                 \
            const char *ci = getenv("CI");                                 \
            if (ci != NULL && strcmp(ci, "true") == 0)                     \
                fail_msg("%s is missing (scripts/install-deps.sh)", tool); \
            skip();                                                        \
        }                                                                  \
    } while (0)

static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static const char *path(const char *name)
{
    static __thread char buf[8][512];
    static __thread int next;
    char *p = buf[next++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* The test PKI: ca, server (by ca), client (by ca), rogue (by rogue-ca). */
static const char *pki_script =
    "set -e; cd '%s'\n"
    "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
    "-out $1 2>/dev/null; }\n"
    "ca() { key $1.key; openssl req -x509 -new -key $1.key -days 3650 "
    "-subj \"/CN=$2\" -out $1.pem 2>/dev/null; }\n"
    "leaf() { key $1.key; openssl req -new -key $1.key -subj \"/CN=$3/O=Zinx "
    "Test\" -out $1.csr 2>/dev/null;\n"
    "  printf '%%s\\n' \"$4\" > $1.ext;\n"
    "  openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key "
    "-CAcreateserial -days 3650 -extfile $1.ext -out $1.pem 2>/dev/null; }\n"
    "ca ca 'Zinx Test CA'; ca rogue-ca 'Rogue CA'\n"
    "leaf server ca localhost 'subjectAltName=DNS:localhost,IP:127.0.0.1'\n"
    "leaf client ca client 'extendedKeyUsage=clientAuth'\n"
    "leaf rogue rogue-ca localhost "
    "'subjectAltName=DNS:localhost,IP:127.0.0.1'\n";

/* The Python peer: frames are TLV (id, length: 32-bit big-endian). */
static const char *py_script =
    "import socket, ssl, struct, sys, time\n"
    "mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]\n"
    "ctx = ssl.create_default_context(cafile=ca)\n"
    "if sys.argv[4]: ctx.load_cert_chain(sys.argv[4], sys.argv[5])\n"
    "raw = socket.create_connection(('127.0.0.1', port), timeout=20)\n"
    "s = ctx.wrap_socket(raw, server_hostname='localhost')\n"
    "def frame(i, d): return struct.pack('>II', i, len(d)) + d\n"
    "def recvn(n):\n"
    "    b = b''\n"
    "    while len(b) < n:\n"
    "        c = s.recv(n - len(b))\n"
    "        if not c: raise EOFError('eof')\n"
    "        b += c\n"
    "    return b\n"
    "def echo(n, size):\n"
    "    msgs = [bytes([(k + j) %% 251 for j in range(size)]) for k in "
    "range(n)]\n"
    "    k = 0\n"
    "    while k < n:\n"
    "        # at most 128 KiB ahead: a peer that writes without reading\n"
    "        # would meet the server's back-pressure\n"
    "        j = k + 1\n"
    "        while j < n and (j + 1 - k) * (size + 8) <= 131072: j += 1\n"
    "        s.sendall(b''.join(frame(1, m) for m in msgs[k:j]))\n"
    "        for m in msgs[k:j]:\n"
    "            i, l = struct.unpack('>II', recvn(8))\n"
    "            if i != 1 or recvn(l) != m: sys.exit(4)\n"
    "        k = j\n"
    "if mode == 'echo':\n"
    "    echo(int(sys.argv[6]), int(sys.argv[7])); print(s.version()); "
    "sys.exit(0)\n"
    "if mode == 'close':\n"
    "    echo(1, 16); s.sendall(frame(%u, b''))\n"
    "    try:\n"
    "        while s.recv(4096): pass\n"
    "    except ssl.SSLEOFError: sys.exit(3)\n"
    "    sys.exit(0)\n"
    "if mode == 'refused':\n"
    "    try:\n"
    "        echo(1, 16)\n"
    "    except (ssl.SSLError, EOFError, ConnectionError): sys.exit(0)\n"
    "    sys.exit(5)\n"
    "if mode == 'hold':\n"
    "    s.sendall(frame(%u, b'')); time.sleep(float(sys.argv[6])); "
    "sys.exit(0)\n";

static int setup_pki(void **state)
{
    (void)state;
    if (!have("openssl"))
        return 0; /* each test skips or fails on its own */
    snprintf(dir, sizeof(dir), "/tmp/zinx-tls-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    char script[4096];
    snprintf(script, sizeof(script), pki_script, dir);
    FILE *f = fopen(path("pki.sh"), "w");
    if (f == NULL)
        return -1;
    fputs(script, f);
    fclose(f);
    f = fopen(path("peer.py"), "w");
    if (f == NULL)
        return -1;
    fprintf(f, py_script, ID_CLOSE, ID_FLOOD);
    fclose(f);
    return run("sh '%s'", path("pki.sh")) == 0 ? 0 : -1;
}

static int teardown_pki(void **state)
{
    (void)state;
    if (dir[0] != '\0')
        run("rm -rf '%s'", dir);
    return 0;
}

/* ---- the server --------------------------------------------------------- */

typedef struct hooks {
    atomic_int starts, stops;
    char version[32], subject[128], sni[64];
} hooks_t;

static void on_start(zinx_conn_t *c, void *udata)
{
    hooks_t *h = udata;
    const char *v = zinx_conn_tls_version(c);
    const char *subj = zinx_conn_tls_peer_subject(c);
    const char *sni = zinx_conn_tls_server_name(c);
    snprintf(h->version, sizeof(h->version), "%s", v ? v : "");
    snprintf(h->subject, sizeof(h->subject), "%s", subj ? subj : "");
    snprintf(h->sni, sizeof(h->sni), "%s", sni ? sni : "");
    atomic_fetch_add(&h->starts, 1);
}

static void on_stop(zinx_conn_t *c, void *udata)
{
    (void)c;
    atomic_fetch_add(&((hooks_t *)udata)->stops, 1);
}

static int one_stop(void *arg)
{
    return atomic_load(&((hooks_t *)arg)->stops) == 1;
}

static void flood(zinx_request_t *req, void *udata)
{
    (void)udata;
    static const uint8_t chunk[4000]; /* within MaxPacketSize */
    for (int i = 0; i < 4096; i++)
        if (zinx_conn_send_msg(zinx_request_conn(req), 1, chunk,
                               sizeof(chunk)) != 0)
            return;
}

static void close_it(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_close(zinx_request_conn(req));
}

typedef struct srv_opts {
    const char *cert, *key, *client_ca;
    uint32_t handshake_ms;
    uint32_t max_packet;
    uint32_t soft, hard;
} srv_opts_t;

static zinx_server_t *tls_server(const srv_opts_t *o, hooks_t *h, int *port)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    snprintf(cfg.cert_file, sizeof(cfg.cert_file), "%s",
             path(o->cert ? o->cert : "server.pem"));
    snprintf(cfg.private_key_file, sizeof(cfg.private_key_file), "%s",
             path(o->key ? o->key : "server.key"));
    if (o->client_ca != NULL)
        snprintf(cfg.tls_client_ca_file, sizeof(cfg.tls_client_ca_file), "%s",
                 path(o->client_ca));
    if (o->handshake_ms != 0)
        cfg.handshake_timeout_ms = o->handshake_ms;
    if (o->max_packet != 0)
        cfg.max_packet_size = o->max_packet;
    if (o->soft != 0) {
        cfg.output_soft_limit = o->soft;
        cfg.output_hard_limit = o->hard;
    }
    zinx_server_t *s = tf_echo_server_new(&cfg);
    zinx_router_t fl = {.handle = flood}, cl = {.handle = close_it};
    assert_int_equal(zinx_server_add_router(s, ID_FLOOD, &fl), 0);
    assert_int_equal(zinx_server_add_router(s, ID_CLOSE, &cl), 0);
    if (h != NULL) {
        zinx_server_on_conn_start(s, on_start, h);
        zinx_server_on_conn_stop(s, on_stop, h);
    }
    *port = tf_start_or_fail(s);
    return s;
}

static uint64_t stat_of(zinx_server_t *s, size_t off)
{
    return tf_stat(s, off);
}

/* ---- openssl s_client ---------------------------------------------------- */

static void s_client_echo(const char *version_flag, const char *want)
{
    NEED("openssl");
    hooks_t h = {0};
    int port;
    zinx_server_t *s = tls_server(&(srv_opts_t){0}, &h, &port);
    uint8_t frame[64];
    size_t n = frame_encode(ZINX_FORMAT_TLV, 1, "hello through tls", 17, frame);
    FILE *f = fopen(path("req.bin"), "wb");
    assert_non_null(f);
    fwrite(frame, 1, n, f);
    fclose(f);
    /* stdin stays open a second so the echo arrives before s_client
       ends the session (with close_notify) at its EOF. */
    int rc = run("(cat '%s'; sleep 1) | timeout 20 openssl s_client "
                 "-connect 127.0.0.1:%d %s -CAfile '%s' -verify_return_error "
                 "-quiet -no_ign_eof > '%s' 2> '%s'",
                 path("req.bin"), port, version_flag, path("ca.pem"),
                 path("out.bin"), path("err.txt"));
    assert_int_equal(rc, 0);
    uint8_t out[256];
    f = fopen(path("out.bin"), "rb");
    assert_non_null(f);
    size_t got = fread(out, 1, sizeof(out), f);
    fclose(f);
    assert_non_null(memmem(out, got, frame, n));
    assert_int_equal(tf_wait_stat(s, TF_STAT(closed), 1, tf_ms(5000)), 1);
    assert_string_equal(h.version, want);
    assert_int_equal(stat_of(s, TF_STAT(tls_failed)), 0);
    zinx_server_free(s);
}

static void t_s_client_tls12(void **state)
{
    (void)state;
    s_client_echo("-tls1_2", "TLSv1.2");
}

static void t_s_client_tls13(void **state)
{
    (void)state;
    s_client_echo("-tls1_3", "TLSv1.3");
}

/* ---- Python's ssl module ------------------------------------------------- */

static int py(const char *mode, int port, const char *cert, const char *key,
              const char *extra)
{
    int rc = run("timeout 60 python3 '%s' %s %d '%s' %s %s %s > '%s' 2>&1",
                 path("peer.py"), mode, port, path("ca.pem"),
                 cert ? path(cert) : "''", key ? path(key) : "''",
                 extra ? extra : "", path("py.txt"));
    if (tf_verbose())
        run("cat '%s' >&2", path("py.txt"));
    return rc;
}

/* Frames both ways, and 1 MiB in 64 KiB messages. */
static void t_python_frames(void **state)
{
    (void)state;
    NEED("openssl");
    NEED("python3");
    hooks_t h = {0};
    int port;
    zinx_server_t *s =
        tls_server(&(srv_opts_t){.max_packet = 70000}, &h, &port);
    assert_int_equal(py("echo", port, NULL, NULL, "100 1000"), 0);
    assert_int_equal(py("echo", port, NULL, NULL, "16 65536"), 0);
    assert_int_equal(tf_wait_stat(s, TF_STAT(closed), 2, tf_ms(5000)), 2);
    assert_string_equal(h.version, "TLSv1.3");
    assert_string_equal(h.sni, "localhost");
    zinx_server_free(s);
}

/* A graceful close sends close_notify: Python sees a clean end, not an
   EOF in violation of the protocol. */
static void t_close_notify(void **state)
{
    (void)state;
    NEED("openssl");
    NEED("python3");
    int port;
    zinx_server_t *s = tls_server(&(srv_opts_t){0}, NULL, &port);
    assert_int_equal(py("close", port, NULL, NULL, NULL), 0);
    zinx_server_free(s);
}

/* Client certificates: refused without one, accepted (and its subject
   seen) with one. */
static void t_client_cert(void **state)
{
    (void)state;
    NEED("openssl");
    NEED("python3");
    hooks_t h = {0};
    int port;
    zinx_server_t *s =
        tls_server(&(srv_opts_t){.client_ca = "ca.pem"}, &h, &port);
    assert_int_equal(py("refused", port, NULL, NULL, NULL), 0);
    assert_int_equal(tf_wait_stat(s, TF_STAT(tls_failed), 1, tf_ms(5000)), 1);
    assert_int_equal(atomic_load(&h.starts), 0);
    assert_int_equal(py("echo", port, "client.pem", "client.key", "1 100"), 0);
    assert_true(tf_wait_until(one_stop, &h, tf_ms(5000)));
    assert_non_null(strstr(h.subject, "CN=client"));
    assert_int_equal(atomic_load(&h.starts), 1); /* the refused one: none */
    zinx_server_free(s);
}

/* A slow reader still meets the output limits through TLS. */
static void t_backpressure(void **state)
{
    (void)state;
    NEED("openssl");
    NEED("python3");
    int port;
    zinx_server_t *s = tls_server(
        &(srv_opts_t){.soft = 512 * 1024, .hard = 1024 * 1024}, NULL, &port);
    assert_int_equal(py("hold", port, NULL, NULL, "3"), 0);
    assert_true(tf_wait_stat_ge(s, TF_STAT(slow_readers), 1, tf_ms(5000)) >= 1);
    zinx_server_free(s);
}

/* ---- handshake failures ---------------------------------------------------
 */

/* A peer that connects and says nothing is cut by HandshakeTimeoutMs and
   counted, with no hooks. */
static void t_handshake_timeout(void **state)
{
    (void)state;
    NEED("openssl");
    hooks_t h = {0};
    int port;
    zinx_server_t *s =
        tls_server(&(srv_opts_t){.handshake_ms = 300}, &h, &port);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(tc_expect_eof(fd, tf_ms(5000)), 0);
    tc_close(fd);
    assert_int_equal(tf_wait_stat(s, TF_STAT(timeouts), 1, tf_ms(2000)), 1);
    assert_int_equal(stat_of(s, TF_STAT(closed)), 0); /* it never opened */
    assert_int_equal(atomic_load(&h.starts), 0);
    assert_int_equal(atomic_load(&h.stops), 0);
    zinx_server_free(s);
}

/* Bytes that are no ClientHello fail the handshake, counted. */
static void t_garbage(void **state)
{
    (void)state;
    NEED("openssl");
    hooks_t h = {0};
    int port;
    zinx_server_t *s = tls_server(&(srv_opts_t){0}, &h, &port);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(tc_send_raw(fd, junk, sizeof(junk) - 1, 1000), 0);
    assert_int_equal(tc_wait_closed(fd, tf_ms(5000), NULL) <= 0, 1);
    tc_close(fd);
    assert_int_equal(tf_wait_stat(s, TF_STAT(tls_failed), 1, tf_ms(2000)), 1);
    assert_int_equal(atomic_load(&h.starts), 0);
    zinx_server_free(s);
}

/* A certificate or key that does not load fails the start. */
static void t_bad_files(void **state)
{
    (void)state;
    NEED("openssl");
    zinx_config_t cfg;
    tf_config(&cfg);
    snprintf(cfg.cert_file, sizeof(cfg.cert_file), "%s", path("nothing.pem"));
    snprintf(cfg.private_key_file, sizeof(cfg.private_key_file), "%s",
             path("server.key"));
    tf_server_t *s = tf_server_new(&cfg); /* its sink keeps the log quiet */
    assert_int_equal(zinx_server_start(s->srv), ZINX_ECONFIG);
    tf_server_free(s);
    tf_config(&cfg);
    snprintf(cfg.cert_file, sizeof(cfg.cert_file), "%s", path("server.pem"));
    snprintf(cfg.private_key_file, sizeof(cfg.private_key_file), "%s",
             path("client.key")); /* another key */
    s = tf_server_new(&cfg);
    assert_int_equal(zinx_server_start(s->srv), ZINX_ECONFIG);
    assert_true(atomic_load(&s->log_count[ZINX_LOG_ERROR]) >= 1);
    tf_server_free(s);
}

/* ---- our client -----------------------------------------------------------
 */

static int c_open(int port, const char *host, zinx_tls_client_t *tls,
                  zinx_sync_client_t **out)
{
    zinx_sync_opts_t o = {.connect_timeout_ms = (uint32_t)tf_ms(5000),
                          .max_packet_size = 70000,
                          .tls = tls};
    char addr[64];
    snprintf(addr, sizeof(addr), "%s", host);
    (void)port;
    return zinx_sync_client_open(addr, port, &o, out);
}

static void echo_ok(zinx_sync_client_t *c, uint32_t len)
{
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    for (uint32_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 7);
    zinx_msg_t m;
    assert_int_equal(
        zinx_sync_client_call(c, 1, buf, len, 1, (uint32_t)tf_ms(5000), &m), 0);
    assert_int_equal(m.len, len);
    assert_memory_equal(m.data, buf, len);
    zinx_sync_msg_free(&m);
    free(buf);
}

static void t_client_verifies(void **state)
{
    (void)state;
    NEED("openssl");
    int port;
    hooks_t h = {0};
    zinx_server_t *s =
        tls_server(&(srv_opts_t){.max_packet = 70000}, &h, &port);
    zinx_sync_client_t *c = NULL;
    /* The system's store does not know the test CA. */
    zinx_tls_client_t *sys = zinx_tls_client_new();
    assert_non_null(sys);
    TF_ASSERT_RC(c_open(port, "127.0.0.1", sys, &c), ZINX_EACCES);
    zinx_tls_client_free(sys);
    /* The right CA: by address and by name. */
    zinx_tls_client_t *tls = zinx_tls_client_new();
    assert_int_equal(zinx_tls_client_set_ca_file(tls, path("ca.pem")), 0);
    TF_ASSERT_RC(c_open(port, "127.0.0.1", tls, &c), 0);
    echo_ok(c, 100);
    for (int i = 0; i < 16; i++)
        echo_ok(c, 65536); /* 1 MiB */
    zinx_sync_client_free(c);
    TF_ASSERT_RC(c_open(port, "localhost", tls, &c), 0);
    echo_ok(c, 10);
    zinx_sync_client_free(c);
    assert_string_equal(h.sni, "localhost");
    /* Settings in use are read-only. */
    TF_ASSERT_RC(zinx_tls_client_set_insecure(tls, 1), ZINX_ESTATE);
    zinx_tls_client_free(tls);
    /* The right CA, another name. */
    tls = zinx_tls_client_new();
    assert_int_equal(zinx_tls_client_set_ca_file(tls, path("ca.pem")), 0);
    assert_int_equal(zinx_tls_client_set_server_name(tls, "other.example"), 0);
    TF_ASSERT_RC(c_open(port, "127.0.0.1", tls, &c), ZINX_EACCES);
    zinx_tls_client_free(tls);
    assert_int_equal(atomic_load(&h.starts), 2); /* not the refused */
    TF_ASSERT_RC(zinx_tls_client_set_ca_file(NULL, "x"), ZINX_EINVAL);
    zinx_server_free(s);
}

static void t_client_insecure(void **state)
{
    (void)state;
    NEED("openssl");
    int port;
    zinx_server_t *s = tls_server(
        &(srv_opts_t){.cert = "rogue.pem", .key = "rogue.key"}, NULL, &port);
    zinx_sync_client_t *c = NULL;
    zinx_tls_client_t *tls = zinx_tls_client_new();
    assert_int_equal(zinx_tls_client_set_ca_file(tls, path("ca.pem")), 0);
    TF_ASSERT_RC(c_open(port, "localhost", tls, &c), ZINX_EACCES);
    zinx_tls_client_free(tls);
    tls = zinx_tls_client_new();
    assert_int_equal(zinx_tls_client_set_insecure(tls, 1), 0);
    TF_ASSERT_RC(c_open(port, "localhost", tls, &c), 0);
    zinx_tls_client_free(tls); /* the client keeps its own reference */
    echo_ok(c, 1000);
    zinx_sync_client_free(c);
    zinx_server_free(s);
}

static void t_client_cert_ours(void **state)
{
    (void)state;
    NEED("openssl");
    int port;
    hooks_t h = {0};
    zinx_server_t *s =
        tls_server(&(srv_opts_t){.client_ca = "ca.pem"}, &h, &port);
    zinx_tls_client_t *tls = zinx_tls_client_new();
    assert_int_equal(zinx_tls_client_set_ca_file(tls, path("ca.pem")), 0);
    assert_int_equal(
        zinx_tls_client_set_cert(tls, path("client.pem"), path("client.key")),
        0);
    TF_ASSERT_RC(
        zinx_tls_client_set_cert(tls, path("client.pem"), path("server.key")),
        ZINX_ECONFIG);
    zinx_sync_client_t *c = NULL;
    TF_ASSERT_RC(c_open(port, "127.0.0.1", tls, &c), 0);
    echo_ok(c, 100);
    zinx_sync_client_free(c);
    zinx_tls_client_free(tls);
    assert_non_null(strstr(h.subject, "CN=client"));
    zinx_server_free(s);
}

static void t_alpn(void **state)
{
    (void)state;
    NEED("openssl");
    zinx_config_t cfg;
    tf_config(&cfg);
    snprintf(cfg.cert_file, sizeof(cfg.cert_file), "%s", path("server.pem"));
    snprintf(cfg.private_key_file, sizeof(cfg.private_key_file), "%s",
             path("server.key"));
    zinx_server_t *s = tf_echo_server_new(&cfg);
    const char *offer[] = {"zinx/2", "zinx/1"};
    const char *bad[] = {""};
    TF_ASSERT_RC(zinx_server_set_tls_alpn(s, bad, 1), ZINX_EINVAL);
    assert_int_equal(zinx_server_set_tls_alpn(s, offer, 2), 0);
    int port = tf_start_or_fail(s);
    zinx_tls_client_t *tls = zinx_tls_client_new();
    const char *want[] = {"zinx/1"};
    assert_int_equal(zinx_tls_client_set_ca_file(tls, path("ca.pem")), 0);
    assert_int_equal(zinx_tls_client_set_alpn(tls, want, 1), 0);
    zinx_sync_client_t *c = NULL;
    TF_ASSERT_RC(c_open(port, "localhost", tls, &c), 0);
    echo_ok(c, 10);
    zinx_sync_client_free(c);
    zinx_tls_client_free(tls);
    /* No protocol in common: refused. */
    tls = zinx_tls_client_new();
    const char *other[] = {"h2"};
    assert_int_equal(zinx_tls_client_set_ca_file(tls, path("ca.pem")), 0);
    assert_int_equal(zinx_tls_client_set_alpn(tls, other, 1), 0);
    TF_ASSERT_RC(c_open(port, "localhost", tls, &c), ZINX_EPROTO);
    zinx_tls_client_free(tls);
    zinx_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_s_client_tls12),
        cmocka_unit_test(t_s_client_tls13),
        cmocka_unit_test(t_python_frames),
        cmocka_unit_test(t_close_notify),
        cmocka_unit_test(t_client_cert),
        cmocka_unit_test(t_backpressure),
        cmocka_unit_test(t_handshake_timeout),
        cmocka_unit_test(t_garbage),
        cmocka_unit_test(t_bad_files),
        cmocka_unit_test(t_client_verifies),
        cmocka_unit_test(t_client_insecure),
        cmocka_unit_test(t_client_cert_ours),
        cmocka_unit_test(t_alpn),
    };
    return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
