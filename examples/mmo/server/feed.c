/* The live map's feed: see feed.h and protocol.h. */
#include "feed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "protocol.h"

typedef struct chat_line {
    int32_t pid;
    char text[MMO_CHAT_MAX + 1];
} chat_line_t;

struct mmo_feed {
    zinx_server_t *server;
    mmo_aoi_t aoi;
    uint64_t *viewers;
    size_t n_viewers, cap_viewers;
    /* The chats of the current tick: a ring of the last MMO_MAP_CHATS. */
    chat_line_t chats[MMO_MAP_CHATS];
    size_t chat_next, chat_count;
    /* The snapshot being built. */
    uint32_t tick;
    uint8_t chunk[4 + MMO_MAP_CHUNK * 12];
    size_t in_chunk;
    /* Rates over the last second. */
    uint64_t rate_ms, rate_moves, rate_broadcasts;
    uint64_t moves_per_s, broadcasts_per_s;
};

mmo_feed_t *mmo_feed_new(zinx_server_t *server, const mmo_aoi_t *aoi)
{
    mmo_feed_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->server = server;
    f->aoi = *aoi;
    return f;
}

void mmo_feed_free(mmo_feed_t *f)
{
    if (f == NULL)
        return;
    free(f->viewers);
    free(f);
}

static void to_viewers(mmo_feed_t *f, uint32_t msg_id, const void *data,
                       size_t len)
{
    if (f->n_viewers > 0)
        (void)zinx_server_notify(f->server, f->viewers, f->n_viewers, msg_id,
                                 data, (uint32_t)len);
}

void mmo_feed_viewer_join(mmo_feed_t *f, uint64_t conn_id)
{
    if (f->n_viewers == f->cap_viewers) {
        size_t cap = f->cap_viewers ? f->cap_viewers * 2 : 8;
        uint64_t *v = realloc(f->viewers, cap * sizeof(*v));
        if (v == NULL)
            return; /* it stays blank; the page retries on its own */
        f->viewers = v;
        f->cap_viewers = cap;
    }
    f->viewers[f->n_viewers++] = conn_id;
    char json[160];
    int n = snprintf(json, sizeof(json),
                     "{\"min_x\":%d,\"max_x\":%d,\"cols\":%d,"
                     "\"min_z\":%d,\"max_z\":%d,\"rows\":%d}",
                     f->aoi.min_x, f->aoi.max_x, f->aoi.cols, f->aoi.min_z,
                     f->aoi.max_z, f->aoi.rows);
    (void)zinx_server_notify(f->server, &conn_id, 1, MMO_MAP_WORLD, json,
                             (uint32_t)n);
}

void mmo_feed_viewer_leave(mmo_feed_t *f, uint64_t conn_id)
{
    for (size_t i = 0; i < f->n_viewers; i++)
        if (f->viewers[i] == conn_id) {
            f->viewers[i] = f->viewers[--f->n_viewers];
            return;
        }
}

void mmo_feed_chat(mmo_feed_t *f, int32_t pid, const char *text)
{
    chat_line_t *line = &f->chats[f->chat_next];
    line->pid = pid;
    snprintf(line->text, sizeof(line->text), "%s", text);
    f->chat_next = (f->chat_next + 1) % MMO_MAP_CHATS;
    if (f->chat_count < MMO_MAP_CHATS)
        f->chat_count++;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, sizeof(v));
    put_u32(p, v);
}

static void flush_chunk(mmo_feed_t *f)
{
    if (f->in_chunk == 0)
        return;
    to_viewers(f, MMO_MAP_PLAYERS, f->chunk, 4 + f->in_chunk * 12);
    f->in_chunk = 0;
}

static void add_player(int32_t pid, const mmo_pos_t *pos, void *udata)
{
    mmo_feed_t *f = udata;
    uint8_t *rec = f->chunk + 4 + f->in_chunk * 12;
    put_u32(rec, (uint32_t)pid);
    put_f32(rec + 4, pos->x);
    put_f32(rec + 8, pos->z);
    if (++f->in_chunk == MMO_MAP_CHUNK)
        flush_chunk(f);
}

static void send_chats(mmo_feed_t *f)
{
    size_t first =
        (f->chat_next + MMO_MAP_CHATS - f->chat_count) % MMO_MAP_CHATS;
    for (size_t i = 0; i < f->chat_count; i++) {
        const chat_line_t *line = &f->chats[(first + i) % MMO_MAP_CHATS];
        uint8_t msg[4 + MMO_CHAT_MAX];
        size_t len = strlen(line->text);
        put_u32(msg, (uint32_t)line->pid);
        memcpy(msg + 4, line->text, len);
        to_viewers(f, MMO_MAP_CHAT, msg, 4 + len);
    }
    f->chat_count = 0;
}

static uint64_t load(const atomic_uint_fast64_t *v)
{
    return atomic_load((atomic_uint_fast64_t *)v);
}

static void update_rates(mmo_feed_t *f, const mmo_counters_t *c,
                         uint64_t now_ms)
{
    if (f->rate_ms == 0 || now_ms - f->rate_ms >= 1000) {
        uint64_t moves = load(&c->moves), sent = load(&c->broadcasts);
        if (f->rate_ms != 0) {
            uint64_t span = now_ms - f->rate_ms;
            f->moves_per_s = (moves - f->rate_moves) * 1000 / span;
            f->broadcasts_per_s = (sent - f->rate_broadcasts) * 1000 / span;
        }
        f->rate_ms = now_ms;
        f->rate_moves = moves;
        f->rate_broadcasts = sent;
    }
}

static void send_stats(mmo_feed_t *f, const mmo_world_t *w,
                       const mmo_counters_t *c)
{
    uint64_t refused =
        load(&c->refused_malformed) + load(&c->refused_position) +
        load(&c->refused_chat_size) + load(&c->refused_chat_rate);
    char json[320];
    int n = snprintf(
        json, sizeof(json),
        "{\"players\":%zu,\"viewers\":%zu,\"moves\":%llu,"
        "\"chats\":%llu,\"moves_per_s\":%llu,"
        "\"broadcasts_per_s\":%llu,\"refused\":%llu}",
        mmo_world_players(w), f->n_viewers, (unsigned long long)load(&c->moves),
        (unsigned long long)load(&c->chats), (unsigned long long)f->moves_per_s,
        (unsigned long long)f->broadcasts_per_s, (unsigned long long)refused);
    to_viewers(f, MMO_MAP_STATS, json, (size_t)n);
}

void mmo_feed_tick(mmo_feed_t *f, const mmo_world_t *w, const mmo_counters_t *c,
                   uint64_t now_ms)
{
    update_rates(f, c, now_ms);
    if (f->n_viewers == 0) {
        f->chat_count = 0;
        return;
    }
    f->tick++;
    put_u32(f->chunk, f->tick);
    mmo_world_each(w, add_player, f);
    flush_chunk(f);
    uint8_t end[8];
    put_u32(end, f->tick);
    put_u32(end + 4, (uint32_t)mmo_world_players(w));
    to_viewers(f, MMO_MAP_END, end, sizeof(end));
    send_chats(f);
    send_stats(f, w, c);
}
