/*
 * Interceptors: the C twin of Zinx's examples/zinx_interceptor.
 *
 * One interceptor logs every decoded message (connection, ID, length,
 * payload) and then proceeds, so routing runs as usual: route 1 answers
 * "hello <payload>" on ID 1.
 *
 * How to run:
 *   ./bin/zinx-interceptor             serve on 0.0.0.0:8999 until Ctrl-C
 *   ./bin/zinx-interceptor --selftest  serve on a free loopback port, send
 *                                      a few messages with a client, print
 *                                      the replies, exit 0 when each is
 *                                      the one expected
 */
#include <stdio.h>
#include <string.h>

#include <zinx.h>

/* Runs on the connection's handler thread, before routing. */
static void log_interceptor(zinx_chain_t *chain, void *udata)
{
    (void)udata;
    zinx_msg_t m = zinx_chain_msg(chain);
    printf("[interceptor] conn %llu: message %u, %u bytes: \"%.*s\"\n",
           (unsigned long long)zinx_conn_id(zinx_chain_conn(chain)), m.id,
           m.len, (int)m.len, (const char *)m.data);
    zinx_chain_proceed(chain, &m); /* unchanged: route as usual */
}

static void hello(zinx_request_t *req, void *udata)
{
    (void)udata;
    char text[64];
    int n = snprintf(text, sizeof(text), "hello %.*s",
                     (int)zinx_request_data_len(req),
                     (const char *)zinx_request_data(req));
    if (n < 0 || (size_t)n >= sizeof(text))
        n = (int)sizeof(text) - 1;
    printf("[route 1] answering\n");
    zinx_conn_send_msg(zinx_request_conn(req), 1, text, (uint32_t)n);
}

static int selftest(zinx_server_t *s)
{
    static const char *const names[] = {"zinx", "interceptor", "world"};
    zinx_sync_client_t *c;
    int rc = zinx_sync_client_connect("127.0.0.1", zinx_server_port(s),
                                      ZINX_FORMAT_TLV, 0, 5000, &c);
    if (rc != 0) {
        fprintf(stderr, "connect: %s\n", zinx_strerror(rc));
        return 1;
    }
    int bad = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char want[64];
        int wlen = snprintf(want, sizeof(want), "hello %s", names[i]);
        zinx_msg_t reply;
        rc = zinx_sync_client_call(c, 1, names[i], (uint32_t)strlen(names[i]),
                                   1, 5000, &reply);
        if (rc != 0) {
            fprintf(stderr, "call: %s\n", zinx_strerror(rc));
            bad = 1;
            break;
        }
        int ok = reply.len == (uint32_t)wlen &&
                 memcmp(reply.data, want, reply.len) == 0;
        printf("client: got \"%.*s\"%s\n", (int)reply.len,
               (const char *)reply.data, ok ? "" : "  <-- unexpected");
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
    zinx_handler_t h = {hello, NULL};
    int rc = zinx_server_add_interceptor(s, log_interceptor, NULL);
    if (rc == 0)
        rc = zinx_server_add_route(s, 1, &h, 1);
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
    setvbuf(stdout, NULL, _IOLBF, 0);
    rc = zinx_server_start(s);
    int result = rc == 0 ? selftest(s) : 1;
    if (rc != 0)
        fprintf(stderr, "start: %s\n", zinx_strerror(rc));
    zinx_server_free(s);
    return result;
}
