/*
 * The world's rules, through a sink that records every message: who hears
 * of an arrival, a move inside a cell and across cells, a chat and a
 * departure; SyncPlayers split to fit; the PID table through churn.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msg.pb-c.h"
#include "protocol.h"
#include "world.h"

typedef struct sent {
    uint64_t ids[64];
    size_t n;
    uint32_t msg_id;
    uint8_t data[4096];
    size_t len;
} sent_t;

typedef struct record {
    sent_t msgs[256];
    size_t n;
} record_t;

static size_t record(void *udata, const uint64_t *ids, size_t n,
                     uint32_t msg_id, const void *data, size_t len)
{
    record_t *r = udata;
    assert_true(r->n < 256);
    assert_true(n <= 64 && len <= sizeof(r->msgs[0].data));
    sent_t *s = &r->msgs[r->n++];
    memcpy(s->ids, ids, n * sizeof(*ids));
    s->n = n;
    s->msg_id = msg_id;
    memcpy(s->data, data, len);
    s->len = len;
    return n;
}

typedef struct fixture {
    record_t rec;
    mmo_world_t *w;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    mmo_aoi_t aoi;
    mmo_aoi_init_zinx(&aoi);
    f->w = mmo_world_new(&aoi, 4096, 42, record, &f->rec);
    assert_non_null(f->w);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    mmo_world_free(f->w);
    free(f);
    return 0;
}

/* Whether message m went to exactly the connections of want[0..n). */
static void assert_to(const sent_t *m, const uint64_t *want, size_t n)
{
    assert_int_equal(m->n, n);
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (size_t j = 0; j < m->n; j++)
            found |= m->ids[j] == want[i];
        assert_true(found);
    }
}

static int32_t pid_of(const sent_t *m)
{
    Pb__SyncPID *p = pb__sync_pid__unpack(NULL, m->len, m->data);
    assert_non_null(p);
    int32_t pid = p->pid;
    pb__sync_pid__free_unpacked(p, NULL);
    return pid;
}

/* A BroadCast's PID and Tp, and its position when it has one. */
static void broadcast_of(const sent_t *m, int32_t *pid, int32_t *tp,
                         mmo_pos_t *pos)
{
    assert_int_equal(m->msg_id, MMO_MSG_BROADCAST);
    Pb__BroadCast *b = pb__broad_cast__unpack(NULL, m->len, m->data);
    assert_non_null(b);
    *pid = b->pid;
    *tp = b->tp;
    if (pos != NULL) {
        assert_int_equal(b->data_case, PB__BROAD_CAST__DATA_P);
        *pos = (mmo_pos_t){b->p->x, b->p->y, b->p->z, b->p->v};
    }
    pb__broad_cast__free_unpacked(b, NULL);
}

static size_t players_in(const sent_t *m)
{
    assert_int_equal(m->msg_id, MMO_MSG_SYNC_PLAYERS);
    Pb__SyncPlayers *s = pb__sync_players__unpack(NULL, m->len, m->data);
    assert_non_null(s);
    size_t n = s->n_ps;
    pb__sync_players__free_unpacked(s, NULL);
    return n;
}

static void arrival_sequence(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(mmo_world_join(f->w, 1, 101), 0);
    /* 1 SyncPID, its own 200 Tp 2, 202 with itself; nobody else yet. */
    assert_int_equal(f->rec.n, 3);
    assert_int_equal(f->rec.msgs[0].msg_id, MMO_MSG_SYNC_PID);
    assert_int_equal(pid_of(&f->rec.msgs[0]), 1);
    assert_to(&f->rec.msgs[0], (uint64_t[]){101}, 1);
    int32_t pid, tp;
    mmo_pos_t pos;
    broadcast_of(&f->rec.msgs[1], &pid, &tp, &pos);
    assert_int_equal(pid, 1);
    assert_int_equal(tp, MMO_TP_APPEAR);
    assert_true(pos.x >= 160 && pos.x <= 209 && pos.x == (int)pos.x);
    assert_true(pos.z >= 134 && pos.z <= 183 && pos.z == (int)pos.z);
    assert_true(pos.y == 0 && pos.v == 0);
    assert_to(&f->rec.msgs[1], (uint64_t[]){101}, 1);
    assert_int_equal(players_in(&f->rec.msgs[2]), 1);

    /* The spawn area spans rows 3..6, so the second may land out of
       the first's sight: each hears of the other exactly when near. */
    f->rec.n = 0;
    assert_int_equal(mmo_world_join(f->w, 2, 102), 0);
    mmo_pos_t p1, p2;
    assert_int_equal(mmo_world_position(f->w, 1, &p1), 0);
    assert_int_equal(mmo_world_position(f->w, 2, &p2), 0);
    mmo_aoi_t aoi;
    mmo_aoi_init_zinx(&aoi);
    bool near = mmo_aoi_near(&aoi, mmo_aoi_cell_of(&aoi, p1.x, p1.z),
                             mmo_aoi_cell_of(&aoi, p2.x, p2.z));
    assert_int_equal(f->rec.n, near ? 4 : 3);
    assert_to(&f->rec.msgs[0], (uint64_t[]){102}, 1);
    assert_to(&f->rec.msgs[1], (uint64_t[]){102}, 1);
    if (near) {
        broadcast_of(&f->rec.msgs[2], &pid, &tp, NULL);
        assert_int_equal(pid, 2);
        assert_int_equal(tp, MMO_TP_APPEAR);
        assert_to(&f->rec.msgs[2], (uint64_t[]){101}, 1);
    }
    const sent_t *sync = &f->rec.msgs[f->rec.n - 1];
    assert_to(sync, (uint64_t[]){102}, 1);
    assert_int_equal(players_in(sync), near ? 2 : 1);
    assert_int_equal(mmo_world_join(f->w, 2, 103), -1);
    assert_int_equal(mmo_world_join(f->w, 0, 103), -1);
    assert_int_equal(mmo_world_players(f->w), 2);
}

static void moves_reach_the_nine_cells_only(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(mmo_world_join(f->w, 1, 101), 0);
    assert_int_equal(mmo_world_join(f->w, 2, 102), 0);
    mmo_pos_t here = {.x = 200, .z = 150};
    assert_int_equal(mmo_world_move(f->w, 1, &here), 0);
    here.x = 201;
    assert_int_equal(mmo_world_move(f->w, 2, &here), 0);

    /* Inside its cell: one Tp 4 to both, the mover included. */
    f->rec.n = 0;
    mmo_pos_t step = {.x = 202, .y = 1, .z = 151, .v = 3};
    assert_int_equal(mmo_world_move(f->w, 1, &step), 0);
    assert_int_equal(f->rec.n, 1);
    int32_t pid, tp;
    mmo_pos_t pos;
    broadcast_of(&f->rec.msgs[0], &pid, &tp, &pos);
    assert_int_equal(tp, MMO_TP_MOVED);
    assert_true(pos.x == 202 && pos.y == 1 && pos.z == 151 && pos.v == 3);
    assert_to(&f->rec.msgs[0], (uint64_t[]){101, 102}, 2);

    /* Far across the world: 2 loses sight of 1 both ways (201 each),
       then only the mover hears its Tp 4. */
    f->rec.n = 0;
    mmo_pos_t far = {.x = 400, .z = 390};
    assert_int_equal(mmo_world_move(f->w, 1, &far), 0);
    assert_int_equal(f->rec.n, 3);
    assert_int_equal(f->rec.msgs[0].msg_id, MMO_MSG_LEAVE);
    assert_int_equal(pid_of(&f->rec.msgs[0]), 1);
    assert_to(&f->rec.msgs[0], (uint64_t[]){102}, 1);
    assert_int_equal(f->rec.msgs[1].msg_id, MMO_MSG_LEAVE);
    assert_int_equal(pid_of(&f->rec.msgs[1]), 2);
    assert_to(&f->rec.msgs[1], (uint64_t[]){101}, 1);
    broadcast_of(&f->rec.msgs[2], &pid, &tp, NULL);
    assert_int_equal(tp, MMO_TP_MOVED);
    assert_to(&f->rec.msgs[2], (uint64_t[]){101}, 1);

    /* Back into view: 200 Tp 2 both ways, then Tp 4 to both. */
    f->rec.n = 0;
    assert_int_equal(mmo_world_move(f->w, 1, &step), 0);
    assert_int_equal(f->rec.n, 3);
    broadcast_of(&f->rec.msgs[0], &pid, &tp, NULL);
    assert_true(pid == 1 && tp == MMO_TP_APPEAR);
    assert_to(&f->rec.msgs[0], (uint64_t[]){102}, 1);
    broadcast_of(&f->rec.msgs[1], &pid, &tp, &pos);
    assert_true(pid == 2 && tp == MMO_TP_APPEAR && pos.x == 201);
    assert_to(&f->rec.msgs[1], (uint64_t[]){101}, 1);
    assert_to(&f->rec.msgs[2], (uint64_t[]){101, 102}, 2);
    assert_int_equal(mmo_world_move(f->w, 9, &step), -1);
}

static void a_step_into_the_next_column(void **state)
{
    fixture_t *f = *state;
    /* Players in columns 1, 2 and 3 of row 1 (Z 100): a step of 1 from
       column 1 to column 2 brings 3 (column 3) into view, while 2 stays
       seen. */
    assert_int_equal(mmo_world_join(f->w, 1, 101), 0);
    assert_int_equal(mmo_world_join(f->w, 2, 102), 0);
    assert_int_equal(mmo_world_join(f->w, 3, 103), 0);
    assert_int_equal(
        mmo_world_move(f->w, 1, &(mmo_pos_t){.x = 148.9f, .z = 100}), 0);
    assert_int_equal(mmo_world_move(f->w, 2, &(mmo_pos_t){.x = 160, .z = 100}),
                     0);
    assert_int_equal(mmo_world_move(f->w, 3, &(mmo_pos_t){.x = 181, .z = 100}),
                     0);
    f->rec.n = 0;
    assert_int_equal(mmo_world_move(f->w, 1, &(mmo_pos_t){.x = 149, .z = 100}),
                     0);
    /* 3 (column 3) appears to 1 and 1 to 3; nobody disappears. */
    assert_int_equal(f->rec.n, 3);
    int32_t pid, tp;
    broadcast_of(&f->rec.msgs[0], &pid, &tp, NULL);
    assert_true(pid == 1 && tp == MMO_TP_APPEAR);
    assert_to(&f->rec.msgs[0], (uint64_t[]){103}, 1);
    broadcast_of(&f->rec.msgs[1], &pid, &tp, NULL);
    assert_true(pid == 3 && tp == MMO_TP_APPEAR);
    assert_to(&f->rec.msgs[1], (uint64_t[]){101}, 1);
    assert_to(&f->rec.msgs[2], (uint64_t[]){101, 102, 103}, 3);
}

static void chat_reaches_everyone(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(mmo_world_join(f->w, 1, 101), 0);
    assert_int_equal(mmo_world_join(f->w, 2, 102), 0);
    assert_int_equal(mmo_world_move(f->w, 2, &(mmo_pos_t){.x = 400, .z = 390}),
                     0);
    f->rec.n = 0;
    assert_int_equal(mmo_world_talk(f->w, 2, "hello, I am player 2"), 0);
    assert_int_equal(f->rec.n, 1);
    Pb__BroadCast *b =
        pb__broad_cast__unpack(NULL, f->rec.msgs[0].len, f->rec.msgs[0].data);
    assert_non_null(b);
    assert_int_equal(b->tp, MMO_TP_CHAT);
    assert_int_equal(b->pid, 2);
    assert_string_equal(b->content, "hello, I am player 2");
    pb__broad_cast__free_unpacked(b, NULL);
    assert_to(&f->rec.msgs[0], (uint64_t[]){101, 102}, 2);
    assert_int_equal(mmo_world_talk(f->w, 7, "x"), -1);
}

/* A chat of another node's player (a cluster): every player of this
   world hears it, as from that player; a PID of this world is refused,
   so a node cannot be made to speak for its own players. */
static void relayed_chat_reaches_everyone(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(mmo_world_join(f->w, 1000001, 101), 0);
    assert_int_equal(mmo_world_join(f->w, 1000002, 102), 0);
    assert_int_equal(
        mmo_world_move(f->w, 1000002, &(mmo_pos_t){.x = 400, .z = 390}), 0);
    f->rec.n = 0;
    assert_int_equal(mmo_world_relay_talk(f->w, 2000005, "from node 2"), 0);
    assert_int_equal(f->rec.n, 1);
    Pb__BroadCast *b =
        pb__broad_cast__unpack(NULL, f->rec.msgs[0].len, f->rec.msgs[0].data);
    assert_non_null(b);
    assert_int_equal(b->tp, MMO_TP_CHAT);
    assert_int_equal(b->pid, 2000005);
    assert_string_equal(b->content, "from node 2");
    pb__broad_cast__free_unpacked(b, NULL);
    assert_to(&f->rec.msgs[0], (uint64_t[]){101, 102}, 2);
    assert_int_equal(mmo_world_relay_talk(f->w, 1000002, "x"), -1);
    assert_int_equal(f->rec.n, 1);
}

static void leave_tells_the_neighbours(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(mmo_world_join(f->w, 1, 101), 0);
    assert_int_equal(mmo_world_join(f->w, 2, 102), 0);
    assert_int_equal(mmo_world_join(f->w, 3, 103), 0);
    assert_int_equal(mmo_world_move(f->w, 1, &(mmo_pos_t){.x = 200, .z = 150}),
                     0);
    assert_int_equal(mmo_world_move(f->w, 2, &(mmo_pos_t){.x = 210, .z = 160}),
                     0);
    assert_int_equal(mmo_world_move(f->w, 3, &(mmo_pos_t){.x = 400, .z = 390}),
                     0);
    f->rec.n = 0;
    assert_int_equal(mmo_world_leave(f->w, 1), 0);
    assert_int_equal(f->rec.n, 1);
    assert_int_equal(f->rec.msgs[0].msg_id, MMO_MSG_LEAVE);
    assert_int_equal(pid_of(&f->rec.msgs[0]), 1);
    assert_to(&f->rec.msgs[0], (uint64_t[]){102}, 1);
    assert_int_equal(mmo_world_leave(f->w, 1), -1);
    assert_int_equal(mmo_world_players(f->w), 2);
    /* The last one alone: nobody to tell. */
    assert_int_equal(mmo_world_leave(f->w, 2), 0);
    f->rec.n = 0;
    assert_int_equal(mmo_world_leave(f->w, 3), 0);
    assert_int_equal(f->rec.n, 0);
}

static void sync_players_is_split_to_fit(void **state)
{
    (void)state;
    record_t *rec = calloc(1, sizeof(*rec));
    mmo_aoi_t aoi;
    mmo_aoi_init_zinx(&aoi);
    mmo_world_t *w = mmo_world_new(&aoi, 200, 7, record, rec);
    assert_non_null(w);
    for (int32_t pid = 1; pid <= 40; pid++) {
        rec->n = 0;
        assert_int_equal(mmo_world_join(w, pid, 100 + (uint64_t)pid), 0);
        assert_int_equal(
            mmo_world_move(w, pid,
                           &(mmo_pos_t){.x = 180.5f, .z = pid % 2 ? 145 : 160}),
            0);
    }
    rec->n = 0;
    assert_int_equal(mmo_world_join(w, 41, 141), 0);
    size_t listed = 0, parts = 0;
    for (size_t i = 0; i < rec->n; i++)
        if (rec->msgs[i].msg_id == MMO_MSG_SYNC_PLAYERS) {
            assert_true(rec->msgs[i].len <= 200);
            listed += players_in(&rec->msgs[i]);
            parts++;
        }
    /* Rows 4 and 5 hold 20 each: whichever spawn row (3..6) the newcomer
       got, it sees at least 20 of them, and exactly those near it. */
    mmo_pos_t me;
    assert_int_equal(mmo_world_position(w, 41, &me), 0);
    int my_cell = mmo_aoi_cell_of(&aoi, me.x, me.z);
    size_t near = 1;
    for (int32_t pid = 1; pid <= 40; pid++)
        near += mmo_aoi_near(
            &aoi, my_cell, mmo_aoi_cell_of(&aoi, 180.5f, pid % 2 ? 145 : 160));
    assert_true(near >= 21);
    assert_true(parts > 1);
    assert_int_equal(listed, near);
    mmo_world_free(w);
    free(rec);
}

static size_t count_sink(void *udata, const uint64_t *ids, size_t n,
                         uint32_t msg_id, const void *data, size_t len)
{
    (void)udata, (void)ids, (void)msg_id, (void)data, (void)len;
    return n;
}

static void pid_table_survives_churn(void **state)
{
    (void)state;
    mmo_aoi_t aoi;
    mmo_aoi_init_zinx(&aoi);
    mmo_world_t *w = mmo_world_new(&aoi, 4096, 1, count_sink, NULL);
    assert_non_null(w);
    for (int32_t pid = 1; pid <= 3000; pid++)
        assert_int_equal(mmo_world_join(w, pid, (uint64_t)pid), 0);
    for (int32_t pid = 1; pid <= 3000; pid += 2)
        assert_int_equal(mmo_world_leave(w, pid), 0);
    mmo_pos_t pos;
    for (int32_t pid = 1; pid <= 3000; pid++)
        assert_int_equal(mmo_world_position(w, pid, &pos), pid % 2 ? -1 : 0);
    assert_int_equal(mmo_world_players(w), 1500);
    for (int32_t pid = 2; pid <= 3000; pid += 2)
        assert_int_equal(mmo_world_leave(w, pid), 0);
    assert_int_equal(mmo_world_players(w), 0);
    assert_true(mmo_world_delivered(w) > 0);
    mmo_world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(arrival_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(moves_reach_the_nine_cells_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_step_into_the_next_column, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(chat_reaches_everyone, setup, teardown),
        cmocka_unit_test_setup_teardown(relayed_chat_reaches_everyone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(leave_tells_the_neighbours, setup,
                                        teardown),
        cmocka_unit_test(sync_players_is_split_to_fit),
        cmocka_unit_test(pid_table_survives_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
