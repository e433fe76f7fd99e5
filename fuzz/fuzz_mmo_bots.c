/*
 * Fuzz target: the MMO bots' handling of what a server tells them
 * (examples/mmo/bots/bot.c): protobuf-c's decoder with the bots' arena
 * under it, the arrival sequence, the checks, echoes and chats, mixed
 * with the bots' own moves and chats as a swarm makes them.
 *
 * Input: a list of operations on three bots of one swarm; each starts
 * with a byte whose low 2 bits pick the bot (3 means bot 0) and whose
 * high bits the operation:
 *   0  a message from the server: u8 picking its ID (msg_id_of: the
 *      protocol's and a few others), u8 length, that many payload bytes
 *   1  the bot moves (when it may);      2  it jumps (when it may)
 *   3  it chats (when it may)
 *   4  u8 k, u8 r: bot r hears the bot's k-th latest move as 200 Tp 4
 *   5  the bot hears its own chat as 200 Tp 1
 *   6  arrival: u8 PID, u8 X, u8 Z: it connects and hears 1 SyncPID and
 *      its own 200 Tp 2 at (85 + X * 1.3, 75 + Z * 1.3)
 *   7  u8 ms: time passes; then every bot checks its chat
 *
 * Checked after each operation: the swarm's count of chats in flight is
 * the number of bots with one out; a bot's unconfirmed moves fit its
 * window and ring; a bot in the world stands inside it at finite
 * coordinates; the decoder's arena is empty again; errors add up.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "bot.h"
#include "fuzz.h"
#include "msg.pb-c.h"
#include "protocol.h"

#define BOTS 3
#define MS 1000000ull

typedef struct world {
    bots_stats_t stats;
    bot_ctx_t ctx;
    bot_t bots[BOTS];
    uint64_t now;
} world_t;

static int sink(void *udata, bot_t *b, uint32_t msg_id, const void *data,
                size_t len)
{
    (void)udata;
    (void)b;
    (void)data;
    FUZZ_CHECK(msg_id == MMO_MSG_MOVE || msg_id == MMO_MSG_TALK,
               "a bot sent message %u", msg_id);
    FUZZ_CHECK(len < 64, "a bot sent %zu bytes", len);
    return 0;
}

/* IDs the protocol has, plus a few it does not. */
static uint32_t msg_id_of(uint8_t b)
{
    static const uint32_t ids[] = {MMO_MSG_SYNC_PID,
                                   MMO_MSG_BROADCAST,
                                   MMO_MSG_LEAVE,
                                   MMO_MSG_SYNC_PLAYERS,
                                   MMO_MSG_TALK,
                                   MMO_MSG_MOVE,
                                   0,
                                   99999};
    return ids[b % (sizeof(ids) / sizeof(ids[0]))];
}

static void hear(world_t *w, bot_t *b, uint32_t id, const uint8_t *data,
                 size_t len)
{
    bot_on_message(&w->ctx, b, id, data, len, w->now);
}

static void hear_at(world_t *w, bot_t *to, int32_t pid, int32_t tp, float x,
                    float z)
{
    Pb__Position p = PB__POSITION__INIT;
    p.x = x;
    p.z = z;
    Pb__BroadCast m = PB__BROAD_CAST__INIT;
    m.pid = pid;
    m.tp = tp;
    m.data_case = PB__BROAD_CAST__DATA_P;
    m.p = &p;
    uint8_t buf[64];
    hear(w, to, MMO_MSG_BROADCAST, buf, pb__broad_cast__pack(&m, buf));
}

static void arrive(world_t *w, bot_t *b, int32_t pid, float x, float z)
{
    Pb__SyncPID m = PB__SYNC_PID__INIT;
    m.pid = pid;
    uint8_t buf[16];
    bot_connected(b);
    hear(w, b, MMO_MSG_SYNC_PID, buf, pb__sync_pid__pack(&m, buf));
    hear_at(w, b, pid, MMO_TP_APPEAR, x, z);
}

static void own_chat(world_t *w, bot_t *b)
{
    Pb__BroadCast m = PB__BROAD_CAST__INIT;
    m.pid = b->pid;
    m.tp = MMO_TP_CHAT;
    m.data_case = PB__BROAD_CAST__DATA_CONTENT;
    m.content = b->chat;
    uint8_t buf[96];
    hear(w, b, MMO_MSG_BROADCAST, buf, pb__broad_cast__pack(&m, buf));
}

static void check_world(const world_t *w)
{
    uint32_t pending = 0;
    for (int i = 0; i < BOTS; i++) {
        const bot_t *b = &w->bots[i];
        pending += b->chat_pending;
        FUZZ_CHECK(b->confirmed <= b->sent, "confirmed beyond sent");
        FUZZ_CHECK(b->sent - b->confirmed <= BOT_WINDOW,
                   "%llu moves out, the window is %u",
                   (unsigned long long)(b->sent - b->confirmed), BOT_WINDOW);
        if (b->state == BOT_IN)
            FUZZ_CHECK(isfinite(b->x) && isfinite(b->z) &&
                           mmo_aoi_inside(&w->ctx.aoi, b->x, b->z),
                       "a bot at X %g Z %g", (double)b->x, (double)b->z);
    }
    FUZZ_CHECK(w->ctx.chats_in_flight == pending,
               "%u chats counted in flight, %u bots with one out",
               w->ctx.chats_in_flight, pending);
    FUZZ_CHECK(w->ctx.arena.used == 0, "the arena holds %zu bytes",
               w->ctx.arena.used);
    uint64_t sum = 0;
    for (int k = 0; k < BOTS_ERR_COUNT; k++)
        sum += w->stats.errors[k];
    FUZZ_CHECK(sum == w->stats.errors_total, "errors do not add up");
}

/* Runs one operation from data[0..size); returns the bytes it took. */
static size_t step(world_t *w, const uint8_t *data, size_t size)
{
    uint8_t op = data[0];
    bot_t *b = &w->bots[(op & 3) % BOTS];
    size_t used = 1;
    switch (op >> 2 & 7) {
    case 0: {
        if (size < 3)
            return size;
        size_t len = data[2] < size - 3 ? data[2] : size - 3;
        hear(w, b, msg_id_of(data[1]), data + 3, len);
        return 3 + len;
    }
    case 1:
        if (bot_may_move(b, w->now))
            bot_move(&w->ctx, b, w->now);
        break;
    case 2:
        if (bot_may_move(b, w->now))
            bot_jump(&w->ctx, b, w->now);
        break;
    case 3:
        if (bot_may_chat(&w->ctx, b))
            bot_chat(&w->ctx, b, w->now);
        break;
    case 4: {
        if (size < 3 || b->sent == 0)
            return size;
        uint64_t back = data[1] % BOT_RING;
        if (back < b->sent) {
            const bot_move_t *m = &b->ring[(b->sent - 1 - back) % BOT_RING];
            hear_at(w, &w->bots[data[2] % BOTS], b->pid, MMO_TP_MOVED, m->x,
                    m->z);
        }
        return 3;
    }
    case 5:
        own_chat(w, b);
        break;
    case 6:
        if (size < 4)
            return size;
        if (b->state == BOT_IDLE)
            arrive(w, b, data[1], 85.0f + data[2] * 1.3f,
                   75.0f + data[3] * 1.3f);
        return 4;
    default:
        if (size < 2)
            return size;
        w->now += data[1] * MS;
        for (int i = 0; i < BOTS; i++)
            bot_check_chat(&w->ctx, &w->bots[i], w->now);
        return 2;
    }
    return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static world_t w;
    memset(&w.bots, 0, sizeof(w.bots));
    bots_stats_init(&w.stats);
    FUZZ_CHECK(bot_ctx_init(&w.ctx, BOTS, &w.stats, sink, &w, 1),
               "out of memory");
    w.ctx.measure_from_ns = 0;
    for (int i = 0; i < BOTS; i++)
        bot_init(&w.bots[i], (uint32_t)i);
    w.now = 1000 * MS;
    for (size_t off = 0; off < size;) {
        off += step(&w, data + off, size - off);
        check_world(&w);
    }
    bot_ctx_free(&w.ctx);
    return 0;
}
