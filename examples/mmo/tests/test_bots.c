/*
 * The bots' logic without a network: bots played against the server's own
 * world rules (server/world.c) through an in-process harness must report
 * no error, every kind of message and matched latencies; and each check a
 * bot makes must fire on a message crafted to break it (a wrong arrival
 * sequence, a bad or duplicate PID, positions outside the world or not
 * finite, a player outside the nine cells, an echo of a move never sent,
 * someone else's words as our chat, malformed protobuf, unknown IDs and
 * Tp). Also: moves stay inside the world, the window holds moves back,
 * and a move's latency is measured at a neighbour.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bot.h"
#include "msg.pb-c.h"
#include "protocol.h"
#include "world.h"

#define MS 1000000ull

/* ---- a harness: bots, a world, and what is on its way ---------------------
 */

typedef struct sent_msg {
    uint32_t bot;
    uint32_t id;
    uint8_t data[64];
    size_t len;
} sent_msg_t;

#define MAX_BOTS 400
#define MAX_QUEUED 20000

typedef struct harness {
    bots_stats_t stats;
    bot_ctx_t ctx;
    bot_t bots[MAX_BOTS];
    uint32_t nbots;
    mmo_world_t *world;
    uint64_t now;
    /* Sends waiting for "the server", in order. */
    sent_msg_t *queue;
    size_t nqueue;
    bool jump_on_join;
    uint32_t joins;
} harness_t;

/* The world's sink: each receiver (conn_id = bot index + 1) gets it now. */
static size_t deliver(void *udata, const uint64_t *ids, size_t n,
                      uint32_t msg_id, const void *data, size_t len)
{
    harness_t *h = udata;
    for (size_t i = 0; i < n; i++) {
        assert_true(ids[i] >= 1 && ids[i] <= h->nbots);
        bot_on_message(&h->ctx, &h->bots[ids[i] - 1], msg_id, data, len,
                       h->now);
    }
    return n;
}

static int queue_send(void *udata, bot_t *b, uint32_t msg_id, const void *data,
                      size_t len)
{
    harness_t *h = udata;
    assert_true(h->nqueue < MAX_QUEUED && len <= sizeof(h->queue[0].data));
    sent_msg_t *m = &h->queue[h->nqueue++];
    m->bot = b->index;
    m->id = msg_id;
    memcpy(m->data, data, len);
    m->len = len;
    return 0;
}

static void joined(void *udata, bot_t *b, uint64_t now)
{
    harness_t *h = udata;
    h->joins++;
    if (h->jump_on_join)
        assert_int_equal(bot_jump(&h->ctx, b, now), 0);
}

static harness_t *harness_new(uint32_t nbots)
{
    harness_t *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    h->queue = calloc(MAX_QUEUED, sizeof(*h->queue));
    assert_non_null(h->queue);
    bots_stats_init(&h->stats);
    assert_true(bot_ctx_init(&h->ctx, nbots, &h->stats, queue_send, h, 7));
    h->ctx.on_join = joined;
    h->ctx.measure_from_ns = 0;
    h->nbots = nbots;
    for (uint32_t i = 0; i < nbots; i++)
        bot_init(&h->bots[i], i);
    mmo_aoi_t aoi;
    mmo_aoi_init_zinx(&aoi);
    h->world = mmo_world_new(&aoi, 4096, 42, deliver, h);
    assert_non_null(h->world);
    h->now = 1000 * MS;
    return h;
}

static void harness_free(harness_t *h)
{
    mmo_world_free(h->world);
    bot_ctx_free(&h->ctx);
    free(h->queue);
    free(h);
}

/* The server applies what waits, as zinx-mmo's world thread does: a
   player's move still waiting when its next comes is replaced by it. */
static void serve(harness_t *h, bool coalesce)
{
    size_t n = h->nqueue;
    h->nqueue = 0;
    sent_msg_t *batch = malloc(n * sizeof(*batch) + 1);
    memcpy(batch, h->queue, n * sizeof(*batch));
    for (size_t i = 0; i < n; i++) {
        sent_msg_t *m = &batch[i];
        int32_t pid = h->bots[m->bot].pid;
        if (m->id == MMO_MSG_MOVE) {
            bool later = false;
            for (size_t k = i + 1; coalesce && k < n && !later; k++)
                later = batch[k].bot == m->bot && batch[k].id == MMO_MSG_MOVE;
            if (later)
                continue;
            Pb__Position *p = pb__position__unpack(NULL, m->len, m->data);
            assert_non_null(p);
            mmo_pos_t to = {p->x, p->y, p->z, p->v};
            pb__position__free_unpacked(p, NULL);
            assert_int_equal(mmo_world_move(h->world, pid, &to), 0);
        } else {
            assert_int_equal(m->id, MMO_MSG_TALK);
            Pb__Talk *t = pb__talk__unpack(NULL, m->len, m->data);
            assert_non_null(t);
            assert_int_equal(mmo_world_talk(h->world, pid, t->content), 0);
            pb__talk__free_unpacked(t, NULL);
        }
    }
    free(batch);
}

static void join_all(harness_t *h)
{
    for (uint32_t i = 0; i < h->nbots; i++) {
        bot_connected(&h->bots[i]);
        assert_int_equal(mmo_world_join(h->world, (int32_t)i + 1, i + 1), 0);
        assert_int_equal(h->bots[i].state, BOT_IN);
    }
}

static void show_errors(const bots_stats_t *s)
{
    for (uint32_t i = 0; i < s->nshown; i++)
        print_message("  %s\n", s->shown[i]);
}

/* ---- the swarm against the world's rules ----------------------------------
 */

static void play_rounds(harness_t *h, int rounds, bool coalesce)
{
    for (int r = 0; r < rounds; r++) {
        h->now += 7 * MS;
        for (uint32_t i = 0; i < h->nbots; i++) {
            bot_t *b = &h->bots[i];
            /* A few moves in flight at once, so the server's view of a
               bot lags behind it. */
            if (bot_may_move(b, h->now))
                assert_int_equal(bot_move(&h->ctx, b, h->now), 0);
            if ((i + (uint32_t)r) % 17 == 0 && bot_may_chat(&h->ctx, b))
                assert_int_equal(bot_chat(&h->ctx, b, h->now), 0);
        }
        if (r % 3 == 2)
            serve(h, coalesce);
    }
    serve(h, coalesce);
}

static void swarm_without_errors(void **state)
{
    (void)state;
    harness_t *h = harness_new(300);
    h->jump_on_join = true;
    join_all(h);
    assert_int_equal(h->joins, 300);
    serve(h, false); /* the jumps: spread over the world */
    play_rounds(h, 60, true);
    for (uint32_t i = 0; i < 100; i++)
        assert_int_equal(mmo_world_leave(h->world, (int32_t)i + 1), 0);
    show_errors(&h->stats);
    assert_int_equal(h->stats.errors_total, 0);
    const bots_counters_t *c = &h->stats.c;
    assert_int_equal(c->joined, 300);
    assert_true(c->broadcast[MMO_TP_CHAT] > 0);
    assert_true(c->broadcast[MMO_TP_APPEAR] > 0);
    assert_true(c->broadcast[MMO_TP_MOVED] > 0);
    assert_true(c->leaves > 0);
    assert_true(c->sync_players >= 300);
    assert_true(c->moves_confirmed > 0);
    assert_true(c->moves_skipped > 0); /* the world replaced some */
    assert_int_equal(c->chats_back, c->chats_sent);
    assert_true(c->latency_samples > 0);
    assert_int_equal(c->latency_unmatched, 0);
    harness_free(h);
}

/* Crowded in Zinx's spawn area (no spread), moves applied one by one. */
static void crowd_without_errors(void **state)
{
    (void)state;
    harness_t *h = harness_new(200);
    join_all(h);
    play_rounds(h, 30, false);
    show_errors(&h->stats);
    assert_int_equal(h->stats.errors_total, 0);
    assert_int_equal(h->stats.c.moves_skipped, 0);
    assert_int_equal(h->stats.c.moves_confirmed, h->stats.c.moves_sent);
    harness_free(h);
}

/* ---- crafted messages ---------------------------------------------------- */

static size_t pack_pid(uint8_t *buf, int32_t pid)
{
    Pb__SyncPID m = PB__SYNC_PID__INIT;
    m.pid = pid;
    return pb__sync_pid__pack(&m, buf);
}

static size_t pack_at(uint8_t *buf, int32_t pid, int32_t tp, float x, float z)
{
    Pb__Position p = PB__POSITION__INIT;
    p.x = x;
    p.z = z;
    Pb__BroadCast m = PB__BROAD_CAST__INIT;
    m.pid = pid;
    m.tp = tp;
    m.data_case = PB__BROAD_CAST__DATA_P;
    m.p = &p;
    return pb__broad_cast__pack(&m, buf);
}

static size_t pack_chat(uint8_t *buf, int32_t pid, const char *text)
{
    Pb__BroadCast m = PB__BROAD_CAST__INIT;
    m.pid = pid;
    m.tp = MMO_TP_CHAT;
    m.data_case = PB__BROAD_CAST__DATA_CONTENT;
    m.content = (char *)text;
    return pb__broad_cast__pack(&m, buf);
}

static void feed(harness_t *h, uint32_t bot, uint32_t id, const uint8_t *buf,
                 size_t len)
{
    bot_on_message(&h->ctx, &h->bots[bot], id, buf, len, h->now);
}

/* Bot `bot` connected and in at (x, z) with PID pid. */
static void arrive(harness_t *h, uint32_t bot, int32_t pid, float x, float z)
{
    uint8_t buf[64];
    bot_connected(&h->bots[bot]);
    feed(h, bot, MMO_MSG_SYNC_PID, buf, pack_pid(buf, pid));
    feed(h, bot, MMO_MSG_BROADCAST, buf,
         pack_at(buf, pid, MMO_TP_APPEAR, x, z));
    assert_int_equal(h->bots[bot].state, BOT_IN);
}

static uint64_t errors_of(const harness_t *h, bots_err_t kind)
{
    return h->stats.errors[kind];
}

static void arrival_sequence(void **state)
{
    (void)state;
    harness_t *h = harness_new(6);
    uint8_t buf[64];

    /* The first message is not 1. */
    bot_connected(&h->bots[0]);
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 1, 2, 200, 200));
    assert_int_equal(errors_of(h, BOTS_ERR_SEQUENCE), 1);
    assert_int_equal(h->bots[0].state, BOT_GONE);

    /* PID 0, then a PID another bot has. */
    bot_connected(&h->bots[1]);
    feed(h, 1, MMO_MSG_SYNC_PID, buf, pack_pid(buf, 0));
    assert_int_equal(errors_of(h, BOTS_ERR_PID), 1);
    arrive(h, 2, 7, 200, 200);
    bot_connected(&h->bots[3]);
    feed(h, 3, MMO_MSG_SYNC_PID, buf, pack_pid(buf, 7));
    assert_int_equal(errors_of(h, BOTS_ERR_PID), 2);

    /* The second is not its own Tp 2. */
    bot_connected(&h->bots[4]);
    feed(h, 4, MMO_MSG_SYNC_PID, buf, pack_pid(buf, 8));
    feed(h, 4, MMO_MSG_BROADCAST, buf, pack_at(buf, 7, 2, 200, 200));
    assert_int_equal(errors_of(h, BOTS_ERR_SEQUENCE), 2);

    /* Its own Tp 2 outside the world. */
    bot_connected(&h->bots[5]);
    feed(h, 5, MMO_MSG_SYNC_PID, buf, pack_pid(buf, 9));
    feed(h, 5, MMO_MSG_BROADCAST, buf, pack_at(buf, 9, 2, 50, 200));
    assert_int_equal(errors_of(h, BOTS_ERR_POSITION), 1);
    assert_int_equal(h->stats.c.joined, 1);

    /* 1 again once in. */
    feed(h, 2, MMO_MSG_SYNC_PID, buf, pack_pid(buf, 7));
    assert_int_equal(errors_of(h, BOTS_ERR_SEQUENCE), 3);
    assert_int_equal(h->stats.errors_total, 6);
    harness_free(h);
}

static void bad_messages(void **state)
{
    (void)state;
    harness_t *h = harness_new(1);
    uint8_t buf[128];
    arrive(h, 0, 5, 200, 200);

    static const uint8_t junk[] = {0xff, 0xff, 0xff};
    feed(h, 0, MMO_MSG_BROADCAST, junk, sizeof(junk));
    feed(h, 0, MMO_MSG_SYNC_PLAYERS, junk, sizeof(junk));
    assert_int_equal(errors_of(h, BOTS_ERR_MALFORMED), 2);

    feed(h, 0, 99, buf, 0);
    assert_int_equal(errors_of(h, BOTS_ERR_UNKNOWN_ID), 1);
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 6, 7, 200, 200));
    assert_int_equal(errors_of(h, BOTS_ERR_UNKNOWN_TP), 1);

    /* Positions not finite, outside, or missing. */
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 6, 4, NAN, 200));
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 6, 4, INFINITY, 200));
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 6, 2, 200, 401));
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_chat(buf, 6, "x")); /* fine */
    Pb__BroadCast nop = PB__BROAD_CAST__INIT;
    nop.pid = 6;
    nop.tp = MMO_TP_MOVED;
    feed(h, 0, MMO_MSG_BROADCAST, buf, pb__broad_cast__pack(&nop, buf));
    assert_int_equal(errors_of(h, BOTS_ERR_POSITION), 4);

    /* Chats: empty, not UTF-8, and ours with other words. */
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_chat(buf, 6, ""));
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_chat(buf, 6, "\xc3\x28"));
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_chat(buf, 5, "not me"));
    assert_int_equal(errors_of(h, BOTS_ERR_CHAT), 3);

    /* 201 about itself, or PID 0. */
    feed(h, 0, MMO_MSG_LEAVE, buf, pack_pid(buf, 5));
    feed(h, 0, MMO_MSG_LEAVE, buf, pack_pid(buf, 0));
    assert_int_equal(errors_of(h, BOTS_ERR_PID), 2);

    /* A 202 listing someone outside the world. */
    Pb__Position p = PB__POSITION__INIT;
    p.x = 200;
    p.z = 1000;
    Pb__Player pl = PB__PLAYER__INIT, *ps[1] = {&pl};
    pl.pid = 6;
    pl.p = &p;
    Pb__SyncPlayers sp = PB__SYNC_PLAYERS__INIT;
    sp.n_ps = 1;
    sp.ps = ps;
    feed(h, 0, MMO_MSG_SYNC_PLAYERS, buf, pb__sync_players__pack(&sp, buf));
    assert_int_equal(errors_of(h, BOTS_ERR_POSITION), 5);
    assert_int_equal(h->stats.errors_total, 14);
    harness_free(h);
}

/* The nine cells: cells are 32 wide and 16 high; the bot stands in
   column 3, row 7 (X 181..212, Z 187..202). */
static void neighbours(void **state)
{
    (void)state;
    harness_t *h = harness_new(1);
    uint8_t buf[64];
    arrive(h, 0, 5, 190, 190);

    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 6, 4, 150, 175)); /* near */
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 6, 4, 244, 218)); /* near */
    assert_int_equal(h->stats.errors_total, 0);
    feed(h, 0, MMO_MSG_BROADCAST, buf,
         pack_at(buf, 6, 4, 245, 190)); /* 2 cols */
    feed(h, 0, MMO_MSG_BROADCAST, buf,
         pack_at(buf, 6, 2, 190, 220)); /* 2 rows */
    assert_int_equal(errors_of(h, BOTS_ERR_NOT_NEAR), 2);

    /* Sent far away but not confirmed: the server may see it at either
       place, so both neighbourhoods count. */
    bot_t *b = &h->bots[0];
    b->x = 390;
    b->z = 380;
    assert_int_equal(bot_move(&h->ctx, b, h->now), 0);
    float nx = b->x, nz = b->z;
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 6, 4, 400, 390));
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 6, 4, 190, 190));
    assert_int_equal(errors_of(h, BOTS_ERR_NOT_NEAR), 2);

    /* Once confirmed, the old place no longer counts. */
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 5, 4, nx, nz));
    assert_int_equal(h->stats.c.moves_confirmed, 1);
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 6, 4, 190, 190));
    assert_int_equal(errors_of(h, BOTS_ERR_NOT_NEAR), 3);

    /* An echo of a place it never went, or confirmed already. */
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 5, 4, 300, 300));
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 5, 4, nx, nz));
    assert_int_equal(errors_of(h, BOTS_ERR_ECHO), 2);
    assert_int_equal(h->stats.errors_total, 5);
    harness_free(h);
}

static void latency_at_a_neighbour(void **state)
{
    (void)state;
    harness_t *h = harness_new(2);
    uint8_t buf[64];
    arrive(h, 0, 5, 200, 200);
    arrive(h, 1, 6, 205, 205);
    h->ctx.measure_from_ns = h->now;
    assert_int_equal(bot_move(&h->ctx, &h->bots[0], h->now), 0);
    float x = h->bots[0].x, z = h->bots[0].z;
    h->now += 5 * MS;
    /* Its own echo is no sample; the neighbour's copy is, 5 ms. */
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 5, 4, x, z));
    assert_int_equal(h->stats.c.latency_samples, 0);
    feed(h, 1, MMO_MSG_BROADCAST, buf, pack_at(buf, 5, 4, x, z));
    assert_int_equal(h->stats.c.latency_samples, 1);
    assert_true(h->stats.run_latency.max >= 5 * MS - MS / 10 &&
                h->stats.run_latency.max <= 5 * MS + MS / 10);
    /* A place the mover never sent matches nothing. */
    feed(h, 1, MMO_MSG_BROADCAST, buf, pack_at(buf, 5, 4, x + 1, z));
    assert_int_equal(h->stats.c.latency_unmatched, 1);
    assert_int_equal(h->stats.errors_total, 0);
    harness_free(h);
}

static void moves_stay_inside(void **state)
{
    (void)state;
    harness_t *h = harness_new(1);
    arrive(h, 0, 5, 85, 400); /* a corner */
    bot_t *b = &h->bots[0];
    for (int i = 0; i < 20000; i++) {
        float px = b->x, pz = b->z;
        b->confirmed = b->sent; /* keep the window open */
        assert_int_equal(bot_move(&h->ctx, b, h->now), 0);
        assert_true(isfinite(b->x) && isfinite(b->z));
        assert_true(mmo_aoi_inside(&h->ctx.aoi, b->x, b->z));
        assert_true(fabsf(b->x - px) <= BOT_STEP + 1.0f);
        assert_true(b->x != px || b->z != pz);
        h->nqueue = 0;
    }
    for (int i = 0; i < 1000; i++) {
        b->confirmed = b->sent;
        assert_int_equal(bot_jump(&h->ctx, b, h->now), 0);
        assert_true(mmo_aoi_inside(&h->ctx.aoi, b->x, b->z));
        h->nqueue = 0;
    }
    /* --crowd: from anywhere, steps go into Zinx's spawn area and stay. */
    bot_ctx_crowd(&h->ctx);
    for (int i = 0; i < 20000; i++) {
        b->confirmed = b->sent;
        assert_int_equal(bot_move(&h->ctx, b, h->now), 0);
        assert_true(b->x >= BOT_SPAWN_X &&
                    b->x <= BOT_SPAWN_X + BOT_SPAWN_SIZE);
        assert_true(b->z >= BOT_SPAWN_Z &&
                    b->z <= BOT_SPAWN_Z + BOT_SPAWN_SIZE);
        h->nqueue = 0;
    }
    harness_free(h);
}

static void window_holds_moves_back(void **state)
{
    (void)state;
    harness_t *h = harness_new(1);
    assert_false(bot_may_move(&h->bots[0], h->now)); /* not in yet */
    arrive(h, 0, 5, 200, 200);
    bot_t *b = &h->bots[0];
    for (unsigned i = 0; i < BOT_WINDOW; i++) {
        assert_true(bot_may_move(b, h->now));
        assert_int_equal(bot_move(&h->ctx, b, h->now), 0);
    }
    assert_false(bot_may_move(b, h->now)); /* the window is full */

    /* Confirming the third confirms the two before it (replaced). */
    uint8_t buf[64];
    const bot_move_t *m = &b->ring[2];
    feed(h, 0, MMO_MSG_BROADCAST, buf, pack_at(buf, 5, 4, m->x, m->z));
    assert_int_equal(b->confirmed, 3);
    assert_int_equal(h->stats.c.moves_skipped, 2);
    assert_true(bot_may_move(b, h->now));
    /* The oldest unconfirmed move too old: held back as well. */
    assert_false(bot_may_move(b, h->now + BOT_HOLD_MS * MS));

    /* One chat at a time per bot, and the swarm's cap. */
    assert_true(bot_may_chat(&h->ctx, b));
    assert_int_equal(bot_chat(&h->ctx, b, h->now), 0);
    assert_false(bot_may_chat(&h->ctx, b));
    feed(h, 0, MMO_MSG_BROADCAST, buf,
         pack_chat(buf, 5, "hello, I am player 5"));
    assert_true(bot_may_chat(&h->ctx, b));
    h->ctx.chats_in_flight = h->ctx.chat_cap;
    assert_false(bot_may_chat(&h->ctx, b));
    h->ctx.chats_in_flight = 0;

    /* A chat that never comes back is lost. */
    assert_int_equal(bot_chat(&h->ctx, b, h->now), 0);
    bot_check_chat(&h->ctx, b, h->now + BOT_CHAT_LOST_MS * MS);
    assert_int_equal(errors_of(h, BOTS_ERR_CHAT_LOST), 1);
    assert_int_equal(h->ctx.chats_in_flight, 0);
    assert_int_equal(h->stats.errors_total, 1);
    harness_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(swarm_without_errors),
        cmocka_unit_test(crowd_without_errors),
        cmocka_unit_test(arrival_sequence),
        cmocka_unit_test(bad_messages),
        cmocka_unit_test(neighbours),
        cmocka_unit_test(latency_at_a_neighbour),
        cmocka_unit_test(moves_stay_inside),
        cmocka_unit_test(window_holds_moves_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
