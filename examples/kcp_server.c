/*
 * KCP (Mode "kcp"): the C twin of Zinx's zinx_kcp example. A server on
 * KcpPort answers message 1 ("ping") with message 2 ("pong" + the ping's
 * text); a kcp-go client (no encryption, no FEC) or this library's own
 * client (zinx_dial_opts_t.kcp) talks to it over UDP with Zinx's frames.
 *
 * How to run:
 *   ./bin/zinx-kcp-server             KcpPort 9001 on 0.0.0.0, until Ctrl-C
 *   ./bin/zinx-kcp-server --selftest  a free loopback port: the library's
 *                                     KCP client sends 200 pings of mixed
 *                                     sizes and checks every pong, in
 *                                     order; exit 0 when all are right
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <zinx.h>

#define PINGS 200

static void ping(zinx_request_t *req, void *udata)
{
    (void)udata;
    uint8_t out[4100];
    uint32_t len = zinx_request_data_len(req);
    if (len > sizeof(out) - 4)
        len = sizeof(out) - 4;
    memcpy(out, "pong", 4);
    memcpy(out + 4, zinx_request_data(req), len);
    zinx_conn_send_msg(zinx_request_conn(req), 2, out, len + 4);
}

static void on_start(zinx_conn_t *c, void *udata)
{
    (void)udata;
    printf("conn %llu from %s (KCP)\n", (unsigned long long)zinx_conn_id(c),
           zinx_conn_remote_addr(c));
}

/* ---- the self-test's client -------------------------------------------- */

typedef struct pongs {
    atomic_int got, bad;
} pongs_t;

static uint32_t ping_len(int i)
{
    return (uint32_t)(i * 19) % 4000u;
}

static void fill(uint8_t *buf, int i, uint32_t len)
{
    for (uint32_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(i + (int)k);
}

static void on_pong(zinx_request_t *req, void *udata)
{
    pongs_t *p = udata;
    int i = atomic_load(&p->got);
    uint8_t want[4000];
    uint32_t len = ping_len(i);
    fill(want, i, len);
    const uint8_t *d = zinx_request_data(req);
    if (zinx_request_data_len(req) != len + 4 || memcmp(d, "pong", 4) != 0 ||
        memcmp(d + 4, want, len) != 0)
        atomic_fetch_add(&p->bad, 1);
    atomic_fetch_add(&p->got, 1);
}

static int wait_for(atomic_int *v, int want, int ms)
{
    struct timespec step = {0, 5 * 1000 * 1000};
    for (int waited = 0; atomic_load(v) < want && waited < ms; waited += 5)
        nanosleep(&step, NULL);
    return atomic_load(v) >= want;
}

static int selftest(zinx_server_t *srv)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    cfg.worker_pool_size = 0; /* pongs in order on the I/O thread */
    cfg.io_threads = 1;
    zinx_server_t *cli = zinx_client_new(&cfg);
    pongs_t p = {0};
    zinx_router_t r = {.handle = on_pong, .udata = &p};
    if (cli == NULL || zinx_server_add_router(cli, 2, &r) != 0 ||
        zinx_server_start(cli) != 0)
        return 1;
    zinx_dial_opts_t o = {.kcp = 1};
    zinx_dialer_t *d = NULL;
    zinx_conn_t *c = NULL;
    int rc =
        zinx_server_dial(cli, "127.0.0.1", zinx_server_kcp_port(srv), &o, &d);
    if (rc == 0)
        rc = zinx_dialer_wait(d, 5000, &c);
    uint8_t buf[4000];
    for (int i = 0; rc == 0 && i < PINGS; i++) {
        fill(buf, i, ping_len(i));
        rc = zinx_conn_send_msg(c, 1, buf, ping_len(i));
    }
    int ok =
        rc == 0 && wait_for(&p.got, PINGS, 20000) && atomic_load(&p.bad) == 0;
    printf("selftest: %d of %d pongs, %d wrong: %s\n", atomic_load(&p.got),
           PINGS, atomic_load(&p.bad), ok ? "ok" : "FAILED");
    zinx_conn_unref(c);
    zinx_dialer_close(d);
    zinx_server_free(cli);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    int test = argc > 1 && strcmp(argv[1], "--selftest") == 0;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    cfg.mode = ZINX_MODE_KCP;
    if (test) {
        snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
        cfg.kcp_port = 0;
    }
    zinx_server_t *srv = zinx_server_new(&cfg);
    zinx_router_t r = {.handle = ping};
    if (srv == NULL || zinx_server_add_router(srv, 1, &r) != 0 ||
        zinx_server_on_conn_start(srv, on_start, NULL) != 0)
        return 1;
    if (!test) {
        int rc = zinx_server_serve(srv) == 0 ? 0 : 1; /* until Ctrl-C */
        zinx_server_free(srv);
        return rc;
    }
    if (zinx_server_start(srv) != 0)
        return 1;
    int rc = selftest(srv);
    zinx_server_free(srv);
    return rc;
}
