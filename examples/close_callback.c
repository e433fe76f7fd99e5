/*
 * Keyed close callbacks, the C twin of Zinx's examples/zinx_closecallback.
 *
 * On each new connection the server hangs callbacks on it under
 * (handler, key) pairs, replaces one (same pair: it keeps its place) and
 * removes another; when the connection ends they run once, in the order
 * added, right after OnConnStop.
 *
 *   ./bin/zinx-close-callback             serve on 0.0.0.0:8999 (Ctrl-C)
 *   ./bin/zinx-close-callback --selftest  serve on a free loopback port,
 *                                         connect one client, close it,
 *                                         check the order, exit 0 or 1
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <zinx.h>

/* The "handlers" and "keys": any distinct addresses of the program. */
static const char room_handler, db_handler;
static const char key_seat, key_chat, key_session;

/* What ran at close, in order (the self-test checks it). */
typedef struct close_log {
    pthread_mutex_t lock;
    pthread_cond_t done;
    char text[256];
    int ran;
} close_log_t;

static void note(close_log_t *log, const char *what)
{
    pthread_mutex_lock(&log->lock);
    size_t used = strlen(log->text);
    snprintf(log->text + used, sizeof(log->text) - used, "%s%s",
             used > 0 ? " " : "", what);
    log->ran++;
    pthread_cond_broadcast(&log->done);
    pthread_mutex_unlock(&log->lock);
}

typedef struct named {
    close_log_t *log;
    const char *name;
} named_t;

static void on_close(zinx_conn_t *conn, const void *handler, const void *key,
                     void *udata)
{
    (void)handler;
    (void)key;
    named_t *n = udata;
    printf("conn %llu closed: callback %s\n",
           (unsigned long long)zinx_conn_id(conn), n->name);
    note(n->log, n->name);
}

static close_log_t the_log = {PTHREAD_MUTEX_INITIALIZER,
                              PTHREAD_COND_INITIALIZER, "", 0};
static named_t seat = {&the_log, "leave-seat"};
static named_t chat = {&the_log, "leave-chat"};
static named_t chat2 = {&the_log, "leave-chat-v2"};
static named_t session = {&the_log, "end-session"};

static void on_start(zinx_conn_t *conn, void *udata)
{
    (void)udata;
    printf("conn %llu started: registering close callbacks\n",
           (unsigned long long)zinx_conn_id(conn));
    zinx_conn_add_close_callback(conn, &room_handler, &key_seat, on_close,
                                 &seat);
    zinx_conn_add_close_callback(conn, &room_handler, &key_chat, on_close,
                                 &chat);
    zinx_conn_add_close_callback(conn, &db_handler, &key_session, on_close,
                                 &session);
    /* The same pair again: replaces leave-chat, in its place. */
    zinx_conn_add_close_callback(conn, &room_handler, &key_chat, on_close,
                                 &chat2);
    /* Removed: never runs. */
    zinx_conn_remove_close_callback(conn, &room_handler, &key_seat);
}

static void on_stop(zinx_conn_t *conn, void *udata)
{
    (void)udata;
    printf("conn %llu: OnConnStop\n", (unsigned long long)zinx_conn_id(conn));
    note(&the_log, "OnConnStop");
}

static void on_ping(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), 1, "pong", 4);
}

/* One client: ping, then close; waits for the callbacks. */
static int selftest(zinx_server_t *server)
{
    zinx_sync_client_t *cl = NULL;
    int rc = zinx_sync_client_connect("127.0.0.1", zinx_server_port(server),
                                      ZINX_FORMAT_TLV, 4096, 5000, &cl);
    if (rc != 0) {
        fprintf(stderr, "connect: %s\n", zinx_strerror(rc));
        return 1;
    }
    zinx_msg_t reply;
    rc = zinx_sync_client_call(cl, 1, "ping", 4, 1, 5000, &reply);
    if (rc == 0)
        zinx_sync_msg_free(&reply);
    zinx_sync_client_free(cl); /* the server sees EOF */
    if (rc != 0) {
        fprintf(stderr, "ping: %s\n", zinx_strerror(rc));
        return 1;
    }
    pthread_mutex_lock(&the_log.lock);
    while (the_log.ran < 3)
        pthread_cond_wait(&the_log.done, &the_log.lock);
    const char *want = "OnConnStop leave-chat-v2 end-session";
    int ok = strcmp(the_log.text, want) == 0;
    printf("order at close: %s (%s)\n", the_log.text,
           ok ? "as expected" : "WRONG");
    pthread_mutex_unlock(&the_log.lock);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    int test = argc > 1 && strcmp(argv[1], "--selftest") == 0;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    if (test) {
        snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
        cfg.tcp_port = 0;
    }
    zinx_server_t *server = zinx_server_new(&cfg);
    if (server == NULL)
        return 1;
    zinx_router_t ping = {.handle = on_ping};
    zinx_server_add_router(server, 1, &ping);
    zinx_server_on_conn_start(server, on_start, NULL);
    zinx_server_on_conn_stop(server, on_stop, NULL);
    int rc;
    if (test) {
        rc = zinx_server_start(server);
        if (rc == 0)
            rc = selftest(server);
        zinx_server_stop(server);
        zinx_server_wait(server);
    } else {
        rc = zinx_server_serve(server);
    }
    zinx_server_free(server);
    return rc == 0 ? 0 : 1;
}
