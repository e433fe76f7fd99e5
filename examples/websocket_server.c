/*
 * One server for TCP and WebSocket clients (Mode ""): the C twin of
 * Zinx's WebSocket mode. Both kinds of connection share the routers and
 * hooks; message 1 echoes, message 2 is broadcast to every connection,
 * TCP or WebSocket. A browser connects with
 *
 *     const ws = new WebSocket('ws://127.0.0.1:9000/ws');
 *     ws.binaryType = 'arraybuffer';
 *     // send TLV frames: id u32 BE, len u32 BE, data
 *
 * and an upgrade whose Origin is not http://localhost... is refused with
 * 403 by the server's check.
 *
 * How to run:
 *   ./bin/zinx-websocket-server             TCP 8999, WebSocket 9000 /ws,
 *                                           until Ctrl-C
 *   ./bin/zinx-websocket-server --selftest  free loopback ports: a TCP
 *                                           client and a WebSocket client
 *                                           (the library's own) exchange
 *                                           broadcasts; exit 0 when right
 */
#include <stdio.h>
#include <string.h>

#include <zinx.h>

static void echo(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), 1, zinx_request_data(req),
                       zinx_request_data_len(req));
}

static void broadcast(zinx_request_t *req, void *udata)
{
    zinx_server_broadcast(udata, 2, zinx_request_data(req),
                          zinx_request_data_len(req));
}

static void on_start(zinx_conn_t *c, void *udata)
{
    (void)udata;
    const char *path = zinx_conn_ws_path(c);
    printf("conn %llu from %s: %s%s\n", (unsigned long long)zinx_conn_id(c),
           zinx_conn_remote_addr(c), path != NULL ? "WebSocket " : "TCP",
           path != NULL ? path : "");
}

/* Browsers send Origin; other clients do not. */
static int check_origin(const char *path, const char *origin,
                        const zinx_ws_request_t *req, void *udata)
{
    (void)path;
    (void)req;
    (void)udata;
    if (origin == NULL || strncmp(origin, "http://localhost", 16) == 0 ||
        strncmp(origin, "http://127.0.0.1", 16) == 0)
        return 0;
    return 403;
}

static zinx_server_t *make_server(int selftest)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    cfg.mode = ZINX_MODE_TCP_WS;
    snprintf(cfg.ws_path, sizeof(cfg.ws_path), "/ws");
    if (selftest) {
        snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
        cfg.tcp_port = 0;
        cfg.ws_port = 0;
    }
    zinx_server_t *s = zinx_server_new(&cfg);
    if (s == NULL)
        return NULL;
    zinx_router_t r_echo = {.handle = echo};
    zinx_router_t r_bcast = {.handle = broadcast, .udata = s};
    zinx_server_add_router(s, 1, &r_echo);
    zinx_server_add_router(s, 2, &r_bcast);
    zinx_server_on_conn_start(s, on_start, NULL);
    zinx_server_set_ws_check(s, check_origin, NULL);
    return s;
}

/* Receives message 2 with text on c; 0 when it came. */
static int expect_bcast(zinx_sync_client_t *c, const char *who,
                        const char *text)
{
    zinx_msg_t m;
    int rc = zinx_sync_client_recv(c, 2, 5000, &m);
    if (rc != 0) {
        printf("%s: no broadcast: %s\n", who, zinx_strerror(rc));
        return 1;
    }
    int bad = m.len != strlen(text) || memcmp(m.data, text, m.len) != 0;
    printf("%s got broadcast \"%.*s\"%s\n", who, (int)m.len,
           (const char *)m.data, bad ? " (WRONG)" : "");
    zinx_sync_msg_free(&m);
    return bad;
}

static int selftest(zinx_server_t *s)
{
    zinx_sync_client_t *tcp = NULL, *ws = NULL;
    zinx_sync_opts_t ws_opts = {.ws_path = "/ws"};
    int rc =
        zinx_sync_client_open("127.0.0.1", zinx_server_port(s), NULL, &tcp);
    if (rc == 0)
        rc = zinx_sync_client_open("127.0.0.1", zinx_server_ws_port(s),
                                   &ws_opts, &ws);
    if (rc != 0) {
        printf("connect: %s\n", zinx_strerror(rc));
        zinx_sync_client_free(tcp);
        return 1;
    }
    zinx_msg_t m;
    int bad = zinx_sync_client_call(ws, 1, "echo", 4, 1, 5000, &m) != 0;
    if (!bad) {
        printf("WebSocket echo \"%.*s\"\n", (int)m.len, (const char *)m.data);
        bad = m.len != 4 || memcmp(m.data, "echo", 4) != 0;
        zinx_sync_msg_free(&m);
    }
    bad |= zinx_sync_client_send(tcp, 2, "from tcp", 8) != 0;
    bad |= expect_bcast(ws, "WebSocket client", "from tcp");
    bad |= expect_bcast(tcp, "TCP client", "from tcp");
    bad |= zinx_sync_client_send(ws, 2, "from ws", 7) != 0;
    bad |= expect_bcast(tcp, "TCP client", "from ws");
    bad |= expect_bcast(ws, "WebSocket client", "from ws");
    zinx_sync_client_free(ws);
    zinx_sync_client_free(tcp);
    printf("selftest: %s\n", bad ? "FAILED" : "ok");
    return bad;
}

int main(int argc, char **argv)
{
    int self = argc > 1 && strcmp(argv[1], "--selftest") == 0;
    zinx_server_t *s = make_server(self);
    if (s == NULL || zinx_server_start(s) != 0) {
        fprintf(stderr, "cannot start the server\n");
        zinx_server_free(s);
        return 1;
    }
    printf("TCP on %d, WebSocket on %d /ws\n", zinx_server_port(s),
           zinx_server_ws_port(s));
    int rc = 0;
    if (self) {
        rc = selftest(s);
    } else {
        /* Until SIGINT or SIGTERM. */
        rc = zinx_server_serve(s) < 0;
    }
    zinx_server_free(s);
    return rc;
}
