/*
 * An echo server over TLS, and a client that verifies it.
 *
 *   ./bin/zinx-tls-server CERT KEY [PORT]   serve TLS echo on 0.0.0.0:PORT
 *                                          (8999) with CERT's chain and
 *                                          KEY (Ctrl-C stops)
 *   ./bin/zinx-tls-server --selftest        make a throw-away certificate
 *                                          with the openssl CLI, serve on a
 *                                          free loopback port, echo through
 *                                          a verifying client, exit 0 or 1
 *
 * Try it by hand:
 *   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
 *       -keyout key.pem -out cert.pem -days 30 -subj /CN=localhost \
 *       -addext subjectAltName=DNS:localhost,IP:127.0.0.1
 *   ./bin/zinx-tls-server cert.pem key.pem &
 *   openssl s_client -connect 127.0.0.1:8999 -CAfile cert.pem
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zinx.h>

#define ECHO_ID 1u

static void echo(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), zinx_request_msg_id(req),
                       zinx_request_data(req), zinx_request_data_len(req));
}

static void on_start(zinx_conn_t *c, void *udata)
{
    (void)udata;
    const char *sni = zinx_conn_tls_server_name(c);
    printf("conn %llu from %s: %s %s, SNI %s\n",
           (unsigned long long)zinx_conn_id(c), zinx_conn_remote_addr(c),
           zinx_conn_tls_version(c), zinx_conn_tls_cipher(c),
           sni != NULL ? sni : "(none)");
    fflush(stdout);
}

static zinx_server_t *make_server(const char *cert, const char *key, int port,
                                  const char *host)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    snprintf(cfg.host, sizeof(cfg.host), "%s", host);
    cfg.tcp_port = port;
    snprintf(cfg.cert_file, sizeof(cfg.cert_file), "%s", cert);
    snprintf(cfg.private_key_file, sizeof(cfg.private_key_file), "%s", key);
    cfg.handshake_timeout_ms = 5000; /* silent peers hold nothing long */
    zinx_server_t *s = zinx_server_new(&cfg);
    if (s == NULL)
        return NULL;
    zinx_router_t r = {.handle = echo};
    zinx_server_add_router(s, ECHO_ID, &r);
    zinx_server_on_conn_start(s, on_start, NULL);
    return s;
}

static int serve(const char *cert, const char *key, int port)
{
    zinx_server_t *s = make_server(cert, key, port, "0.0.0.0");
    if (s == NULL || zinx_server_start(s) != 0) {
        fprintf(stderr, "cannot start (see the log above)\n");
        zinx_server_free(s);
        return 1;
    }
    zinx_server_serve(s); /* until SIGINT or SIGTERM */
    zinx_server_free(s);
    return 0;
}

/* The client half of the self-test: verify the server by its CA and
   the address dialled, echo one message. */
static int client_check(int port, const char *ca)
{
    zinx_tls_client_t *tls = zinx_tls_client_new();
    if (tls == NULL || zinx_tls_client_set_ca_file(tls, ca) != 0) {
        zinx_tls_client_free(tls);
        return 1;
    }
    zinx_sync_opts_t o = {.tls = tls, .connect_timeout_ms = 10000};
    zinx_sync_client_t *c = NULL;
    int rc = zinx_sync_client_open("127.0.0.1", port, &o, &c);
    zinx_tls_client_free(tls); /* the client holds its own reference */
    if (rc != 0) {
        fprintf(stderr, "connect: %s\n", zinx_strerror(rc));
        return 1;
    }
    zinx_msg_t m;
    rc = zinx_sync_client_call(c, ECHO_ID, "hello over TLS", 14, ECHO_ID, 10000,
                               &m);
    int ok =
        rc == 0 && m.len == 14 && memcmp(m.data, "hello over TLS", 14) == 0;
    if (rc == 0)
        zinx_sync_msg_free(&m);
    zinx_sync_client_free(c);
    printf("selftest: %s\n", ok ? "echo verified over TLS" : "FAILED");
    return ok ? 0 : 1;
}

static int selftest(void)
{
    char dir[] = "/tmp/zinx-tls-example-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    char cmd[1024], cert[128], key[128];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
             "-nodes -keyout %s -out %s -days 1 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
             ">/dev/null 2>&1",
             key, cert);
    int rc = 1;
    zinx_server_t *s = NULL;
    if (system(cmd) != 0) {
        fprintf(stderr, "selftest: the openssl CLI failed\n");
        goto out;
    }
    s = make_server(cert, key, 0, "127.0.0.1");
    if (s == NULL || zinx_server_start(s) != 0)
        goto out;
    rc = client_check(zinx_server_port(s), cert);
out:
    zinx_server_free(s);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--selftest") == 0)
        return selftest();
    if (argc < 3) {
        fprintf(stderr, "usage: %s CERT KEY [PORT] | --selftest\n", argv[0]);
        return 2;
    }
    return serve(argv[1], argv[2], argc > 3 ? atoi(argv[3]) : 8999);
}
