/* The MMO world: see world.h. */
#include "world.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "msg.pb-c.h"
#include "protocol.h"

typedef struct player {
    int32_t pid;
    uint64_t conn_id;
    mmo_pos_t pos;
    int cell;
    uint32_t in_cell; /* index in its cell's list */
    uint32_t in_all;  /* index in the world's list */
} player_t;

/* A list of players: a cell's, or the whole world's. */
typedef struct plist {
    player_t **p;
    uint32_t n, cap;
} plist_t;

struct mmo_world {
    mmo_aoi_t aoi;
    mmo_send_fn send;
    void *udata;
    uint64_t rng;
    plist_t *cells;
    plist_t all;
    /* PID -> player: open addressing, linear probing, 0 = empty. */
    player_t **map;
    uint32_t map_cap;
    /* Scratch: receivers' IDs, and one encoded message. */
    uint64_t *ids;
    size_t ids_cap;
    uint8_t *buf;
    size_t max_payload;
    uint64_t delivered;
};

/* ---- lists ------------------------------------------------------------ */

static bool plist_push(plist_t *l, player_t *p, uint32_t *index)
{
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 8;
        player_t **np = realloc(l->p, cap * sizeof(*np));
        if (np == NULL)
            return false;
        l->p = np;
        l->cap = cap;
    }
    *index = l->n;
    l->p[l->n++] = p;
    return true;
}

/* Removes l->p[i] by moving the last one into its place; returns the
   moved player (NULL when i was last) so its index can be fixed. */
static player_t *plist_take(plist_t *l, uint32_t i)
{
    player_t *last = l->p[--l->n];
    if (i == l->n)
        return NULL;
    l->p[i] = last;
    return last;
}

static bool cell_add(mmo_world_t *w, player_t *p, int cell)
{
    p->cell = cell;
    return plist_push(&w->cells[cell], p, &p->in_cell);
}

static void cell_remove(mmo_world_t *w, player_t *p)
{
    player_t *moved = plist_take(&w->cells[p->cell], p->in_cell);
    if (moved != NULL)
        moved->in_cell = p->in_cell;
}

/* ---- PID map ---------------------------------------------------------- */

static uint32_t slot_of(const mmo_world_t *w, int32_t pid)
{
    return ((uint32_t)pid * 2654435761u) & (w->map_cap - 1);
}

static player_t *find(const mmo_world_t *w, int32_t pid)
{
    for (uint32_t i = slot_of(w, pid);; i = (i + 1) & (w->map_cap - 1)) {
        player_t *p = w->map[i];
        if (p == NULL || p->pid == pid)
            return p;
    }
}

static void map_put(mmo_world_t *w, player_t *p)
{
    uint32_t i = slot_of(w, p->pid);
    while (w->map[i] != NULL)
        i = (i + 1) & (w->map_cap - 1);
    w->map[i] = p;
}

/* Keeps the table at most half full, so probes stay short. */
static bool map_reserve(mmo_world_t *w)
{
    if ((w->all.n + 1) * 2 <= w->map_cap)
        return true;
    uint32_t old_cap = w->map_cap;
    player_t **old = w->map;
    w->map_cap = old_cap ? old_cap * 2 : 64;
    if ((w->map = calloc(w->map_cap, sizeof(*w->map))) == NULL) {
        w->map = old;
        w->map_cap = old_cap;
        return false;
    }
    for (uint32_t i = 0; i < old_cap; i++)
        if (old[i] != NULL)
            map_put(w, old[i]);
    free(old);
    return true;
}

/* Deletes by shifting back the entries after it that probed past it, so
   no tombstones pile up as players come and go. */
static void map_remove(mmo_world_t *w, const player_t *p)
{
    uint32_t mask = w->map_cap - 1, i = slot_of(w, p->pid);
    while (w->map[i] != p)
        i = (i + 1) & mask;
    for (uint32_t j = (i + 1) & mask; w->map[j] != NULL; j = (j + 1) & mask) {
        uint32_t home = slot_of(w, w->map[j]->pid);
        /* Move j back into the hole at i unless its home lies in (i, j]. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            w->map[i] = w->map[j];
            i = j;
        }
    }
    w->map[i] = NULL;
}

/* ---- sending ---------------------------------------------------------- */

static bool ids_reserve(mmo_world_t *w, size_t n)
{
    if (n <= w->ids_cap)
        return true;
    size_t cap = w->ids_cap ? w->ids_cap : 256;
    while (cap < n)
        cap *= 2;
    uint64_t *ids = realloc(w->ids, cap * sizeof(*ids));
    if (ids == NULL)
        return false;
    w->ids = ids;
    w->ids_cap = cap;
    return true;
}

/* Collects the connection IDs of the players in cells[0..n), but not
   `skip` (may be NULL), into w->ids; returns how many (0 when out of
   memory: then nobody is told, which the caller cannot improve on). */
static size_t gather(mmo_world_t *w, const int *cells, int n,
                     const player_t *skip)
{
    size_t total = 0, k = 0;
    for (int i = 0; i < n; i++)
        total += w->cells[cells[i]].n;
    if (!ids_reserve(w, total))
        return 0;
    for (int i = 0; i < n; i++) {
        const plist_t *c = &w->cells[cells[i]];
        for (uint32_t j = 0; j < c->n; j++)
            if (c->p[j] != skip)
                w->ids[k++] = c->p[j]->conn_id;
    }
    return k;
}

static void emit(mmo_world_t *w, const uint64_t *ids, size_t n, uint32_t msg_id,
                 const void *data, size_t len)
{
    if (n > 0)
        w->delivered += w->send(w->udata, ids, n, msg_id, data, len);
}

static void emit_one(mmo_world_t *w, const player_t *to, uint32_t msg_id,
                     const void *data, size_t len)
{
    emit(w, &to->conn_id, 1, msg_id, data, len);
}

/* SyncPID{pid}: the payloads of messages 1 and 201. */
static size_t pack_pid(mmo_world_t *w, int32_t pid)
{
    Pb__SyncPID m = PB__SYNC_PID__INIT;
    m.pid = pid;
    return pb__sync_pid__pack(&m, w->buf);
}

/* BroadCast{pid, tp, P: pos}: appear (Tp 2) and moved (Tp 4). */
static size_t pack_at(mmo_world_t *w, const player_t *p, int32_t tp)
{
    Pb__Position pos = PB__POSITION__INIT;
    pos.x = p->pos.x;
    pos.y = p->pos.y;
    pos.z = p->pos.z;
    pos.v = p->pos.v;
    Pb__BroadCast m = PB__BROAD_CAST__INIT;
    m.pid = p->pid;
    m.tp = tp;
    m.data_case = PB__BROAD_CAST__DATA_P;
    m.p = &pos;
    return pb__broad_cast__pack(&m, w->buf);
}

/* ---- life ------------------------------------------------------------- */

mmo_world_t *mmo_world_new(const mmo_aoi_t *aoi, size_t max_payload,
                           uint64_t seed, mmo_send_fn send, void *udata)
{
    /* The largest fixed message (a BroadCast with a position) and one
       player of SyncPlayers must fit. */
    if (max_payload < 64)
        return NULL;
    mmo_world_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->aoi = *aoi;
    w->send = send;
    w->udata = udata;
    w->rng = seed | 1;
    w->max_payload = max_payload;
    w->cells = calloc((size_t)mmo_aoi_cells(aoi), sizeof(*w->cells));
    w->buf = malloc(max_payload + MMO_CHAT_MAX + 64);
    if (w->cells == NULL || w->buf == NULL || !map_reserve(w)) {
        mmo_world_free(w);
        return NULL;
    }
    return w;
}

void mmo_world_free(mmo_world_t *w)
{
    if (w == NULL)
        return;
    for (uint32_t i = 0; i < w->all.n; i++)
        free(w->all.p[i]);
    if (w->cells != NULL)
        for (int i = 0; i < mmo_aoi_cells(&w->aoi); i++)
            free(w->cells[i].p);
    free(w->cells);
    free(w->all.p);
    free(w->map);
    free(w->ids);
    free(w->buf);
    free(w);
}

/* xorshift64*: the world's own generator, so no process-wide state. */
static uint32_t rand_below(mmo_world_t *w, uint32_t n)
{
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return (uint32_t)((w->rng * 2685821657736338717ull) >> 32) % n;
}

/* 202 SyncPlayers to p: everyone in its nine cells, in as many messages
   as max_payload needs (Zinx sends one, however large). */
#define SYNC_BATCH 128

static void sync_players(mmo_world_t *w, const player_t *p)
{
    int around[9];
    int n = mmo_aoi_around(&w->aoi, p->cell, around);
    Pb__Position pos[SYNC_BATCH];
    Pb__Player pl[SYNC_BATCH], *ptr[SYNC_BATCH];
    Pb__SyncPlayers m = PB__SYNC_PLAYERS__INIT;
    m.ps = ptr;
    size_t size = 0;
    for (int i = 0; i < n; i++) {
        const plist_t *c = &w->cells[around[i]];
        for (uint32_t j = 0; j < c->n; j++) {
            const player_t *q = c->p[j];
            Pb__Position qp = PB__POSITION__INIT;
            qp.x = q->pos.x;
            qp.y = q->pos.y;
            qp.z = q->pos.z;
            qp.v = q->pos.v;
            Pb__Player one = PB__PLAYER__INIT;
            one.pid = q->pid;
            one.p = &qp;
            /* The element's tag and length take at most 3 bytes. */
            size_t add = pb__player__get_packed_size(&one) + 3;
            if (m.n_ps == SYNC_BATCH ||
                (m.n_ps > 0 && size + add > w->max_payload)) {
                emit_one(w, p, MMO_MSG_SYNC_PLAYERS, w->buf,
                         pb__sync_players__pack(&m, w->buf));
                m.n_ps = 0;
                size = 0;
            }
            pos[m.n_ps] = qp;
            pl[m.n_ps] = one;
            pl[m.n_ps].p = &pos[m.n_ps];
            ptr[m.n_ps] = &pl[m.n_ps];
            m.n_ps++;
            size += add;
        }
    }
    emit_one(w, p, MMO_MSG_SYNC_PLAYERS, w->buf,
             pb__sync_players__pack(&m, w->buf));
}

int mmo_world_join(mmo_world_t *w, int32_t pid, uint64_t conn_id)
{
    if (pid <= 0 || find(w, pid) != NULL)
        return -1;
    player_t *p = calloc(1, sizeof(*p));
    if (p == NULL || !map_reserve(w))
        goto fail;
    p->pid = pid;
    p->conn_id = conn_id;
    p->pos.x = (float)(160 + rand_below(w, 50));
    p->pos.z = (float)(134 + rand_below(w, 50));
    if (!plist_push(&w->all, p, &p->in_all))
        goto fail;
    if (!cell_add(w, p, mmo_aoi_cell_of(&w->aoi, p->pos.x, p->pos.z))) {
        plist_take(&w->all, p->in_all);
        goto fail;
    }
    map_put(w, p);

    emit_one(w, p, MMO_MSG_SYNC_PID, w->buf, pack_pid(w, pid));
    size_t len = pack_at(w, p, MMO_TP_APPEAR);
    emit_one(w, p, MMO_MSG_BROADCAST, w->buf, len);
    int around[9];
    int n = mmo_aoi_around(&w->aoi, p->cell, around);
    emit(w, w->ids, gather(w, around, n, p), MMO_MSG_BROADCAST, w->buf, len);
    sync_players(w, p);
    return 0;
fail:
    free(p);
    return -2;
}

int mmo_world_leave(mmo_world_t *w, int32_t pid)
{
    player_t *p = find(w, pid);
    if (p == NULL)
        return -1;
    map_remove(w, p);
    cell_remove(w, p);
    player_t *moved = plist_take(&w->all, p->in_all);
    if (moved != NULL)
        moved->in_all = p->in_all;
    int around[9];
    int n = mmo_aoi_around(&w->aoi, p->cell, around);
    emit(w, w->ids, gather(w, around, n, NULL), MMO_MSG_LEAVE, w->buf,
         pack_pid(w, pid));
    free(p);
    return 0;
}

/* The cells of a[0..na) that are not in b[0..nb). */
static int minus(const int *a, int na, const int *b, int nb, int out[9])
{
    int k = 0;
    for (int i = 0; i < na; i++) {
        bool in = false;
        for (int j = 0; j < nb && !in; j++)
            in = a[i] == b[j];
        if (!in)
            out[k++] = a[i];
    }
    return k;
}

/* Tells p's old view it left (201 both ways) and its new view it came
   (200 Tp 2 both ways), as Zinx's OnExchangeAoiGrid does; p is already
   in its new cell at its new position. */
static void exchange_views(mmo_world_t *w, player_t *p, int from)
{
    int old_around[9], new_around[9], gone[9], came[9];
    int no = mmo_aoi_around(&w->aoi, from, old_around);
    int nn = mmo_aoi_around(&w->aoi, p->cell, new_around);
    int ng = minus(old_around, no, new_around, nn, gone);
    int nc = minus(new_around, nn, old_around, no, came);

    size_t k = gather(w, gone, ng, p);
    emit(w, w->ids, k, MMO_MSG_LEAVE, w->buf, pack_pid(w, p->pid));
    for (int i = 0; i < ng; i++) {
        const plist_t *c = &w->cells[gone[i]];
        for (uint32_t j = 0; j < c->n; j++)
            emit_one(w, p, MMO_MSG_LEAVE, w->buf, pack_pid(w, c->p[j]->pid));
    }
    k = gather(w, came, nc, p);
    emit(w, w->ids, k, MMO_MSG_BROADCAST, w->buf, pack_at(w, p, MMO_TP_APPEAR));
    for (int i = 0; i < nc; i++) {
        const plist_t *c = &w->cells[came[i]];
        for (uint32_t j = 0; j < c->n; j++)
            if (c->p[j] != p)
                emit_one(w, p, MMO_MSG_BROADCAST, w->buf,
                         pack_at(w, c->p[j], MMO_TP_APPEAR));
    }
}

int mmo_world_move(mmo_world_t *w, int32_t pid, const mmo_pos_t *to)
{
    player_t *p = find(w, pid);
    if (p == NULL)
        return -1;
    int from = p->cell;
    int cell = mmo_aoi_cell_of(&w->aoi, to->x, to->z);
    p->pos = *to;
    if (cell != from) {
        cell_remove(w, p);
        if (!cell_add(w, p, cell)) {
            /* Out of memory: it stays where the grid can hold it. The
               removal above freed a place in its old cell. */
            (void)cell_add(w, p, from);
            cell = from;
        } else {
            exchange_views(w, p, from);
        }
    }
    int around[9];
    int n = mmo_aoi_around(&w->aoi, cell, around);
    size_t k = gather(w, around, n, NULL);
    emit(w, w->ids, k, MMO_MSG_BROADCAST, w->buf, pack_at(w, p, MMO_TP_MOVED));
    return 0;
}

/* 200 Tp 1 from pid with text to every player of this world. */
static void say_to_all(mmo_world_t *w, int32_t pid, const char *text)
{
    Pb__BroadCast m = PB__BROAD_CAST__INIT;
    m.pid = pid;
    m.tp = MMO_TP_CHAT;
    m.data_case = PB__BROAD_CAST__DATA_CONTENT;
    m.content = (char *)text;
    if (pb__broad_cast__get_packed_size(&m) > w->max_payload)
        return; /* the caller bounds chats far below; never truncate */
    size_t len = pb__broad_cast__pack(&m, w->buf);
    if (!ids_reserve(w, w->all.n))
        return;
    for (uint32_t i = 0; i < w->all.n; i++)
        w->ids[i] = w->all.p[i]->conn_id;
    emit(w, w->ids, w->all.n, MMO_MSG_BROADCAST, w->buf, len);
}

int mmo_world_talk(mmo_world_t *w, int32_t pid, const char *text)
{
    if (find(w, pid) == NULL)
        return -1;
    say_to_all(w, pid, text);
    return 0;
}

int mmo_world_relay_talk(mmo_world_t *w, int32_t pid, const char *text)
{
    /* Another node's player is never one of this world's. */
    if (find(w, pid) != NULL)
        return -1;
    say_to_all(w, pid, text);
    return 0;
}

size_t mmo_world_players(const mmo_world_t *w)
{
    return w->all.n;
}

int mmo_world_position(const mmo_world_t *w, int32_t pid, mmo_pos_t *out)
{
    const player_t *p = find(w, pid);
    if (p == NULL)
        return -1;
    *out = p->pos;
    return 0;
}

void mmo_world_each(const mmo_world_t *w,
                    void (*fn)(int32_t pid, const mmo_pos_t *pos, void *udata),
                    void *udata)
{
    for (uint32_t i = 0; i < w->all.n; i++)
        fn(w->all.p[i]->pid, &w->all.p[i]->pos, udata);
}

uint64_t mmo_world_delivered(const mmo_world_t *w)
{
    return w->delivered;
}
