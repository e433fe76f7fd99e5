/*
 * Router slices: the C twin of Zinx's examples/zinx_routerSlices.
 *
 *   global middleware (Use)  log_mw: logs each message, runs the rest of
 *                            the chain with zinx_request_next(), logs
 *                            again when it is done (where Zinx's
 *                            RouterRecovery would recover a panic)
 *   group 3..10              group_mw: "checks" the message, then
 *     route 3                pong
 *     route 4                deny (aborts), pong (never runs)
 *   route 1                  pong (a slice route)
 *   route 2                  a classic router: pre_handle aborts when
 *                            the payload is "stop", so handle and post
 *                            do not run
 *
 * How to run:
 *   ./bin/zinx-router-slices             serve on 0.0.0.0:8999 until
 *                                        Ctrl-C (send TLV frames with IDs
 *                                        1..4 and watch the log)
 *   ./bin/zinx-router-slices --selftest  serve on a free loopback port,
 *                                        send each case with a client,
 *                                        print the replies, exit 0 when
 *                                        each is the one expected
 */
#include <stdio.h>
#include <string.h>

#include <zinx.h>

/* ---- the handlers ---------------------------------------------------- */

static void log_mw(zinx_request_t *req, void *udata)
{
    (void)udata;
    unsigned long long conn = zinx_conn_id(zinx_request_conn(req));
    uint32_t id = zinx_request_msg_id(req);
    printf("[use]   conn %llu message %u: in\n", conn, id);
    zinx_request_next(req); /* the rest of the chain runs here */
    printf("[use]   conn %llu message %u: out%s\n", conn, id,
           zinx_request_is_aborted(req) ? " (aborted)" : "");
}

static void group_mw(zinx_request_t *req, void *udata)
{
    (void)udata;
    printf("[group] message %u is in 3..10\n", zinx_request_msg_id(req));
}

/* Answers "pong <id>" on the same ID. */
static void pong(zinx_request_t *req, void *udata)
{
    (void)udata;
    char text[32];
    uint32_t id = zinx_request_msg_id(req);
    int n = snprintf(text, sizeof(text), "pong %u", id);
    printf("[route] message %u: pong\n", id);
    zinx_conn_send_msg(zinx_request_conn(req), id, text, (uint32_t)n);
}

static void deny(zinx_request_t *req, void *udata)
{
    (void)udata;
    uint32_t id = zinx_request_msg_id(req);
    printf("[route] message %u: denied, abort\n", id);
    zinx_request_abort(req);
    zinx_conn_send_msg(zinx_request_conn(req), id, "denied", 6);
}

static void classic_pre(zinx_request_t *req, void *udata)
{
    (void)udata;
    if (zinx_request_data_len(req) == 4 &&
        memcmp(zinx_request_data(req), "stop", 4) == 0) {
        printf("[classic] pre_handle: abort\n");
        zinx_request_abort(req);
        zinx_conn_send_msg(zinx_request_conn(req), 2, "aborted in pre", 14);
    }
}

static void classic_post(zinx_request_t *req, void *udata)
{
    (void)udata;
    (void)req;
    printf("[classic] post_handle\n");
}

/* Registers everything; returns 0 or the first error. */
static int set_up(zinx_server_t *s)
{
    zinx_handler_t use = {log_mw, NULL};
    zinx_handler_t group_use = {group_mw, NULL};
    zinx_handler_t ping[] = {{pong, NULL}};
    zinx_handler_t denied[] = {{deny, NULL}, {pong, NULL}};
    zinx_router_t classic = {
        .pre_handle = classic_pre, .handle = pong, .post_handle = classic_post};
    zinx_group_t *g;
    int rc;
    if ((rc = zinx_server_use(s, &use, 1)) != 0 ||
        (rc = zinx_server_group(s, 3, 10, &group_use, 1, &g)) != 0 ||
        (rc = zinx_group_add_route(g, 3, ping, 1)) != 0 ||
        (rc = zinx_group_add_route(g, 4, denied, 2)) != 0 ||
        (rc = zinx_server_add_route(s, 1, ping, 1)) != 0 ||
        (rc = zinx_server_add_router(s, 2, &classic)) != 0)
        return rc;
    /* An ID outside the group is refused, not a crash. */
    if (zinx_group_add_route(g, 11, ping, 1) != ZINX_EINVAL)
        return ZINX_EINVAL;
    return 0;
}

/* ---- self-test: a client sends each case --------------------------------- */

typedef struct exchange {
    uint32_t id;
    const char *send, *want;
} exchange_t;

static int selftest(zinx_server_t *s)
{
    static const exchange_t cases[] = {
        {1, "hi", "pong 1"},
        {2, "go", "pong 2"},
        {2, "stop", "aborted in pre"},
        {3, "", "pong 3"},
        {4, "", "denied"},
        /* Answered next, so route 4's pong did not run. */
        {1, "again", "pong 1"},
    };
    zinx_sync_client_t *c;
    int rc = zinx_sync_client_connect("127.0.0.1", zinx_server_port(s),
                                      ZINX_FORMAT_TLV, 0, 5000, &c);
    if (rc != 0) {
        fprintf(stderr, "connect: %s\n", zinx_strerror(rc));
        return 1;
    }
    int bad = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const exchange_t *x = &cases[i];
        zinx_msg_t reply;
        rc = zinx_sync_client_call(c, x->id, x->send, (uint32_t)strlen(x->send),
                                   -1, 5000, &reply);
        if (rc != 0) {
            fprintf(stderr, "message %u: %s\n", x->id, zinx_strerror(rc));
            bad = 1;
            break;
        }
        int ok = reply.id == x->id && reply.len == strlen(x->want) &&
                 memcmp(reply.data, x->want, reply.len) == 0;
        printf("client: sent %u \"%s\", got %u \"%.*s\"%s\n", x->id, x->send,
               reply.id, (int)reply.len, (const char *)reply.data,
               ok ? "" : "  <-- unexpected");
        bad |= !ok;
        zinx_sync_msg_free(&reply);
    }
    zinx_sync_client_free(c);
    printf("selftest: %s\n", bad ? "FAILED" : "ok");
    return bad;
}

int main(int argc, char **argv)
{
    int self = argc > 1 && strcmp(argv[1], "--selftest") == 0;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    if (self) {
        snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
        cfg.tcp_port = 0;
    }
    zinx_server_t *s = zinx_server_new(&cfg);
    if (s == NULL)
        return 1;
    int rc = set_up(s);
    if (rc != 0) {
        fprintf(stderr, "set-up: %s\n", zinx_strerror(rc));
        zinx_server_free(s);
        return 1;
    }
    if (!self) {
        rc = zinx_server_serve(s); /* until Ctrl-C or SIGTERM */
        zinx_server_free(s);
        return rc == 0 ? 0 : 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* server and client lines in order */
    rc = zinx_server_start(s);
    int result = rc == 0 ? selftest(s) : 1;
    if (rc != 0)
        fprintf(stderr, "start: %s\n", zinx_strerror(rc));
    zinx_server_free(s);
    return result;
}
