/*
 * WorkerMode DynamicBind, as Zinx's zinx_dynamic_bind example: a server
 * with one pre-started worker (WorkerPoolSize 1, MaxWorkerTaskLen 50)
 * whose handler takes a while, and several clients at once. Each client
 * gets a worker of its own (the pool's one, then workers made for it and
 * retired when it leaves), so their slow requests run side by side
 * instead of queueing on one worker as they would with Hash.
 *
 * Run: ./bin/zinx-dynamic-bind [clients]   (default 4; it starts the
 * server on a free port, runs the clients, checks they had workers of
 * their own, and exits 0; 1 if not).
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zinx.h>

#define SLOW_ID 1
#define REQUESTS 3  /* per client */
#define WORK_MS 200 /* what each request takes on the server */
#define MAX_CLIENTS 32

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The slow handler: works a while, then answers with its worker's ID. */
static void on_slow(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *conn = zinx_request_conn(req);
    sleep_ms(WORK_MS);
    char reply[32];
    int n = snprintf(reply, sizeof(reply), "%u", zinx_conn_worker_id(conn));
    zinx_conn_send_msg(conn, SLOW_ID, reply, (uint32_t)n);
}

static void on_start(zinx_conn_t *conn, void *udata)
{
    (void)udata;
    printf("server: conn %llu on worker %u\n",
           (unsigned long long)zinx_conn_id(conn), zinx_conn_worker_id(conn));
}

typedef struct client {
    pthread_t thread;
    int index, port;
    pthread_barrier_t *all_connected, *all_done;
    long worker; /* from the replies; -1 on failure */
    double ms;
} client_t;

/* Connects, waits for the others (so all are connected at once), sends
   its slow requests, and stays connected until every client is done:
   each keeps its worker the whole time. */
static void *run_client(void *arg)
{
    client_t *cl = arg;
    cl->worker = -1;
    zinx_sync_client_t *sc = NULL;
    int rc = zinx_sync_client_open("127.0.0.1", cl->port, NULL, &sc);
    pthread_barrier_wait(cl->all_connected);
    double t0 = now_ms();
    for (int i = 0; rc == 0 && i < REQUESTS; i++) {
        zinx_msg_t reply;
        rc = zinx_sync_client_call(sc, SLOW_ID, "work", 4, SLOW_ID, 30000,
                                   &reply);
        if (rc == 0) {
            char id[32] = "";
            memcpy(id, reply.data, reply.len < 31 ? reply.len : 31);
            cl->worker = strtol(id, NULL, 10);
            zinx_sync_msg_free(&reply);
        }
    }
    cl->ms = now_ms() - t0;
    if (rc != 0) {
        fprintf(stderr, "client %d: %s\n", cl->index, zinx_strerror(rc));
        cl->worker = -1;
    }
    pthread_barrier_wait(cl->all_done);
    zinx_sync_client_free(sc);
    return NULL;
}

static zinx_server_t *start_server(void)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    snprintf(cfg.name, sizeof(cfg.name), "dynamic-bind-demo");
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.tcp_port = 0; /* any free port */
    cfg.worker_mode = ZINX_WORKER_DYNAMIC_BIND;
    cfg.worker_pool_size = 1;
    cfg.max_worker_task_len = 50;
    cfg.max_conn = 100;
    zinx_server_t *s = zinx_server_new(&cfg);
    if (s == NULL)
        return NULL;
    zinx_router_t slow = {.handle = on_slow};
    if (zinx_server_add_router(s, SLOW_ID, &slow) != 0 ||
        zinx_server_on_conn_start(s, on_start, NULL) != 0 ||
        zinx_server_start(s) != 0) {
        zinx_server_free(s);
        return NULL;
    }
    return s;
}

/* Every client got a reply, and no two shared a worker. */
static int check(const client_t *cl, int n)
{
    for (int i = 0; i < n; i++) {
        if (cl[i].worker < 0)
            return 0;
        for (int j = 0; j < i; j++)
            if (cl[j].worker == cl[i].worker)
                return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 4;
    if (n < 1 || n > MAX_CLIENTS) {
        fprintf(stderr, "usage: %s [clients 1..%d]\n", argv[0], MAX_CLIENTS);
        return 2;
    }
    zinx_server_t *s = start_server();
    if (s == NULL) {
        fprintf(stderr, "server did not start\n");
        return 1;
    }
    pthread_barrier_t connected, done;
    pthread_barrier_init(&connected, NULL, (unsigned)n);
    pthread_barrier_init(&done, NULL, (unsigned)n);
    client_t cl[MAX_CLIENTS];
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        cl[i] = (client_t){.index = i,
                           .port = zinx_server_port(s),
                           .all_connected = &connected,
                           .all_done = &done};
        pthread_create(&cl[i].thread, NULL, run_client, &cl[i]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(cl[i].thread, NULL);
    double total = now_ms() - t0;
    for (int i = 0; i < n; i++)
        printf("client %d: worker %ld, %d requests in %.0f ms\n", i,
               cl[i].worker, REQUESTS, cl[i].ms);
    printf("all %d clients in %.0f ms (one worker for all would take at "
           "least %d ms)\n",
           n, total, n * REQUESTS * WORK_MS);
    zinx_server_free(s); /* stops: the workers made on demand are gone */
    pthread_barrier_destroy(&connected);
    pthread_barrier_destroy(&done);
    int ok = check(cl, n);
    printf("%s\n", ok ? "ok: every client had a worker of its own"
                      : "FAILED: clients shared a worker or got no reply");
    return ok ? 0 : 1;
}
