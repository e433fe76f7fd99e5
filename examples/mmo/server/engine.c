/* The world thread and its queue: see engine.h. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime, pthread_condattr */
#endif
#include "engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster_chat.h"
#include "feed.h"
#include "protocol.h"

typedef enum cmd_kind {
    CMD_JOIN,
    CMD_LEAVE,
    CMD_MOVE,
    CMD_TALK,
    CMD_REMOTE_TALK,
    CMD_VIEWER_JOIN,
    CMD_VIEWER_LEAVE
} cmd_kind_t;

typedef struct cmd {
    cmd_kind_t kind;
    mmo_session_t *s; /* player commands */
    uint64_t conn_id; /* viewer commands */
    int32_t pid;      /* CMD_REMOTE_TALK: the talker, of another node */
    char *text;       /* CMD_TALK and CMD_REMOTE_TALK, owned */
    mmo_pos_t pos;    /* CMD_MOVE, filled when taken from the queue */
} cmd_t;

typedef struct cmdq {
    cmd_t *c;
    size_t n, cap;
} cmdq_t;

struct mmo_engine {
    zinx_server_t *server;
    mmo_aoi_t aoi;
    mmo_world_t *world;
    mmo_feed_t *feed;
    mmo_counters_t counters;
    atomic_int next_pid;
    uint32_t node; /* 0: no cluster */

    pthread_mutex_t lock;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC */
    cmdq_t queue;        /* under lock */
    size_t queued_chats; /* under lock */
    bool stopping;       /* under lock */
    bool started;
    pthread_t thread;
};

/* The world's sink: the library encodes once and shares the frame. */
static size_t send_to(void *udata, const uint64_t *ids, size_t n,
                      uint32_t msg_id, const void *data, size_t len)
{
    mmo_engine_t *e = udata;
    int rc = zinx_server_notify(e->server, ids, n, msg_id, data, (uint32_t)len);
    if (rc <= 0)
        return 0;
    atomic_fetch_add(&e->counters.broadcasts, (uint64_t)rc);
    return (size_t)rc;
}

mmo_engine_t *mmo_engine_new(zinx_server_t *server, size_t max_payload)
{
    mmo_engine_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->server = server;
    atomic_init(&e->next_pid, 1);
    mmo_aoi_init_zinx(&e->aoi);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t seed = (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 20);
    e->world = mmo_world_new(&e->aoi, max_payload, seed, send_to, e);
    e->feed = mmo_feed_new(server, &e->aoi);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&e->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (e->world == NULL || e->feed == NULL || rc != 0) {
        mmo_world_free(e->world);
        mmo_feed_free(e->feed);
        if (rc == 0)
            pthread_cond_destroy(&e->wake);
        free(e);
        return NULL;
    }
    pthread_mutex_init(&e->lock, NULL);
    return e;
}

mmo_counters_t *mmo_engine_counters(mmo_engine_t *e)
{
    return &e->counters;
}

const mmo_aoi_t *mmo_engine_aoi(const mmo_engine_t *e)
{
    return &e->aoi;
}

void mmo_engine_set_node(mmo_engine_t *e, uint32_t node)
{
    e->node = node;
}

int32_t mmo_engine_next_pid(mmo_engine_t *e)
{
    int32_t n = atomic_fetch_add(&e->next_pid, 1);
    if (e->node == 0)
        return n;
    /* The node's range, from + 1 again after its last ID. */
    int32_t seq = (int32_t)(((uint32_t)n - 1u) % (MMO_PID_NODE_STRIDE - 1)) + 1;
    return (int32_t)e->node * MMO_PID_NODE_STRIDE + seq;
}

/* ---- the queue -------------------------------------------------------- */

static bool push_locked(mmo_engine_t *e, const cmd_t *c)
{
    cmdq_t *q = &e->queue;
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        cmd_t *nc = realloc(q->c, cap * sizeof(*nc));
        if (nc == NULL)
            return false;
        q->c = nc;
        q->cap = cap;
    }
    q->c[q->n++] = *c;
    if (q->n == 1)
        pthread_cond_signal(&e->wake);
    return true;
}

static bool push(mmo_engine_t *e, const cmd_t *c)
{
    pthread_mutex_lock(&e->lock);
    bool ok = push_locked(e, c);
    pthread_mutex_unlock(&e->lock);
    return ok;
}

bool mmo_engine_join(mmo_engine_t *e, mmo_session_t *s)
{
    return push(e, &(cmd_t){.kind = CMD_JOIN, .s = s});
}

/* A leave must never be lost (the session would never be freed nor the
   player removed), so it is retried until memory allows. */
bool mmo_engine_leave(mmo_engine_t *e, mmo_session_t *s)
{
    while (!push(e, &(cmd_t){.kind = CMD_LEAVE, .s = s}))
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    return true;
}

bool mmo_engine_move(mmo_engine_t *e, mmo_session_t *s, const mmo_pos_t *to)
{
    bool ok = true;
    pthread_mutex_lock(&e->lock);
    s->pending = *to;
    if (!s->move_queued) {
        ok = push_locked(e, &(cmd_t){.kind = CMD_MOVE, .s = s});
        s->move_queued = ok;
    }
    pthread_mutex_unlock(&e->lock);
    return ok;
}

/* A chat, local or of another node, within the backlog's cap. */
static bool push_chat(mmo_engine_t *e, cmd_t *c, const char *text)
{
    c->text = strdup(text);
    if (c->text == NULL)
        return false;
    bool ok = false;
    pthread_mutex_lock(&e->lock);
    if (e->queued_chats < MMO_QUEUED_CHATS)
        ok = push_locked(e, c);
    e->queued_chats += ok;
    pthread_mutex_unlock(&e->lock);
    if (!ok)
        free(c->text);
    return ok;
}

bool mmo_engine_talk(mmo_engine_t *e, mmo_session_t *s, const char *text)
{
    return push_chat(e, &(cmd_t){.kind = CMD_TALK, .s = s}, text);
}

bool mmo_engine_remote_talk(mmo_engine_t *e, int32_t pid, const char *text)
{
    return push_chat(e, &(cmd_t){.kind = CMD_REMOTE_TALK, .pid = pid}, text);
}

bool mmo_engine_viewer_join(mmo_engine_t *e, uint64_t conn_id)
{
    return push(e, &(cmd_t){.kind = CMD_VIEWER_JOIN, .conn_id = conn_id});
}

bool mmo_engine_viewer_leave(mmo_engine_t *e, uint64_t conn_id)
{
    while (!push(e, &(cmd_t){.kind = CMD_VIEWER_LEAVE, .conn_id = conn_id}))
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    return true;
}

/* ---- the world thread ------------------------------------------------- */

/* In a cluster, a chat this world accepted goes to the other nodes too. */
static void relay_chat(mmo_engine_t *e, int32_t pid, const char *text)
{
    if (e->node == 0)
        return;
    if (mmo_cluster_chat_publish(e->server, pid, text) == 0)
        atomic_fetch_add(&e->counters.chats_out, 1);
    else
        atomic_fetch_add(&e->counters.chats_out_failed, 1);
}

static void apply(mmo_engine_t *e, cmd_t *c)
{
    switch (c->kind) {
    case CMD_JOIN:
        if (mmo_world_join(e->world, c->s->pid, c->s->conn_id) == 0)
            atomic_fetch_add(&e->counters.joined, 1);
        break;
    case CMD_LEAVE:
        if (mmo_world_leave(e->world, c->s->pid) == 0)
            atomic_fetch_add(&e->counters.left, 1);
        free(c->s);
        break;
    case CMD_MOVE:
        if (mmo_world_move(e->world, c->s->pid, &c->pos) == 0)
            atomic_fetch_add(&e->counters.moves, 1);
        break;
    case CMD_TALK:
        if (mmo_world_talk(e->world, c->s->pid, c->text) == 0) {
            atomic_fetch_add(&e->counters.chats, 1);
            mmo_feed_chat(e->feed, c->s->pid, c->text);
            relay_chat(e, c->s->pid, c->text);
        }
        free(c->text);
        break;
    case CMD_REMOTE_TALK:
        if (mmo_world_relay_talk(e->world, c->pid, c->text) == 0) {
            atomic_fetch_add(&e->counters.chats_in, 1);
            mmo_feed_chat(e->feed, c->pid, c->text);
        } else {
            atomic_fetch_add(&e->counters.refused_chats_in, 1);
        }
        free(c->text);
        break;
    case CMD_VIEWER_JOIN:
        mmo_feed_viewer_join(e->feed, c->conn_id);
        break;
    case CMD_VIEWER_LEAVE:
        mmo_feed_viewer_leave(e->feed, c->conn_id);
        break;
    }
}

/* Takes the whole queue (under the lock), with each waiting move's
   latest position, so the lock is held for a swap and a pass. */
static cmdq_t take_locked(mmo_engine_t *e)
{
    cmdq_t batch = e->queue;
    e->queue = (cmdq_t){0};
    for (size_t i = 0; i < batch.n; i++) {
        cmd_t *c = &batch.c[i];
        if (c->kind == CMD_MOVE) {
            c->pos = c->s->pending;
            c->s->move_queued = false;
        } else if (c->kind == CMD_TALK || c->kind == CMD_REMOTE_TALK) {
            e->queued_chats--;
        }
    }
    return batch;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void wait_until(mmo_engine_t *e, uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
                          .tv_nsec = (long)(ms % 1000) * 1000000};
    pthread_cond_timedwait(&e->wake, &e->lock, &ts);
}

static void *world_main(void *arg)
{
    mmo_engine_t *e = arg;
    uint64_t next_tick = now_ms() + MMO_MAP_TICK_MS;
    cmdq_t spare = {0};
    pthread_mutex_lock(&e->lock);
    for (;;) {
        if (e->queue.n == 0) {
            if (e->stopping)
                break;
            if (now_ms() < next_tick)
                wait_until(e, next_tick);
        }
        cmdq_t batch = take_locked(e);
        /* Hand the queue the previous batch's array back: steady state
           then allocates nothing. */
        if (spare.c != NULL && e->queue.c == NULL) {
            e->queue = spare;
            e->queue.n = 0;
            spare = (cmdq_t){0};
        }
        pthread_mutex_unlock(&e->lock);
        for (size_t i = 0; i < batch.n; i++)
            apply(e, &batch.c[i]);
        free(spare.c);
        spare = batch;
        uint64_t now = now_ms();
        if (now >= next_tick) {
            mmo_feed_tick(e->feed, e->world, &e->counters, now);
            next_tick = now + MMO_MAP_TICK_MS;
        }
        pthread_mutex_lock(&e->lock);
    }
    pthread_mutex_unlock(&e->lock);
    free(spare.c);
    return NULL;
}

int mmo_engine_start(mmo_engine_t *e)
{
    int rc = pthread_create(&e->thread, NULL, world_main, e);
    if (rc != 0)
        return -rc;
    e->started = true;
    return 0;
}

void mmo_engine_stop(mmo_engine_t *e)
{
    if (!e->started)
        return;
    pthread_mutex_lock(&e->lock);
    e->stopping = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    e->started = false;
}

void mmo_engine_free(mmo_engine_t *e)
{
    if (e == NULL)
        return;
    /* Commands never applied (the thread never ran): free what they own.
       Sessions are freed by their leave, which is always queued. */
    for (size_t i = 0; i < e->queue.n; i++) {
        free(e->queue.c[i].text);
        if (e->queue.c[i].kind == CMD_LEAVE)
            free(e->queue.c[i].s);
    }
    free(e->queue.c);
    mmo_world_free(e->world);
    mmo_feed_free(e->feed);
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->lock);
    free(e);
}
