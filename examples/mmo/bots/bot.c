/* One bot: its moves and chats, and the checks of what it hears. See
   bot.h. */
#include "bot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"
#include "msg.pb-c.h"
#include "protocol.h"

/* Room for the largest message the bots decode at once without malloc:
   a 202 of MaxPacketSize 4096 lists about 150 players. */
#define ARENA_BYTES (256u * 1024u)
/* The swarm keeps at most this many chat deliveries on their way (a chat
   reaches every player), and at least BOT_MIN_CHATS chats. */
#define CHAT_DELIVERIES 100000u
#define BOT_MIN_CHATS 4u
/* Zinx's robot moves with V 25 or 350. */
#define V_SLOW 25.0f
#define V_FAST 350.0f

#define MS_NS 1000000ull

/* ---- context ------------------------------------------------------------ */

bool bot_ctx_init(bot_ctx_t *ctx, uint32_t players, bots_stats_t *stats,
                  bot_send_fn send, void *udata, uint64_t seed)
{
    memset(ctx, 0, sizeof(*ctx));
    mmo_aoi_init_zinx(&ctx->aoi);
    ctx->stats = stats;
    ctx->send = send;
    ctx->udata = udata;
    ctx->measure_from_ns = UINT64_MAX;
    ctx->chat_cap = CHAT_DELIVERIES / (players ? players : 1);
    if (ctx->chat_cap < BOT_MIN_CHATS)
        ctx->chat_cap = BOT_MIN_CHATS;
    ctx->rng = seed ? seed : 0x853c49e6748fea9bull;
    ctx->box[0] = (float)ctx->aoi.min_x;
    ctx->box[1] = (float)ctx->aoi.max_x;
    ctx->box[2] = (float)ctx->aoi.min_z;
    ctx->box[3] = (float)ctx->aoi.max_z;
    if (!bot_pidmap_init(&ctx->pids, players))
        return false;
    if (!pb_arena_init(&ctx->arena, ARENA_BYTES)) {
        bot_pidmap_free(&ctx->pids);
        return false;
    }
    return true;
}

void bot_ctx_free(bot_ctx_t *ctx)
{
    bot_pidmap_free(&ctx->pids);
    pb_arena_free(&ctx->arena);
}

/* xorshift64*: a float in [0, 1) with 24 random bits. */
static float rand_unit(bot_ctx_t *ctx)
{
    ctx->rng ^= ctx->rng >> 12;
    ctx->rng ^= ctx->rng << 25;
    ctx->rng ^= ctx->rng >> 27;
    uint64_t r = ctx->rng * 2685821657736338717ull;
    return (float)(r >> 40) / (float)(1u << 24);
}

/* ---- a bot's life ------------------------------------------------------- */

void bot_init(bot_t *b, uint32_t index)
{
    memset(b, 0, sizeof(*b));
    b->index = index;
    b->state = BOT_IDLE;
}

void bot_connected(bot_t *b)
{
    b->state = BOT_WAIT_PID;
}

void bot_gone(bot_ctx_t *ctx, bot_t *b)
{
    if (b->chat_pending) {
        b->chat_pending = false;
        ctx->chats_in_flight--;
    }
    b->state = BOT_GONE;
}

/* ---- checks ------------------------------------------------------------- */

static bool finite_pos(const Pb__Position *p)
{
    return isfinite(p->x) && isfinite(p->y) && isfinite(p->z) && isfinite(p->v);
}

/* Whether p is a position inside the world; an error when not. */
static bool check_pos(bot_ctx_t *ctx, const bot_t *b, const Pb__Position *p,
                      int32_t pid, const char *what)
{
    if (p == NULL) {
        bots_error(ctx->stats, BOTS_ERR_POSITION,
                   "bot %u: %s of PID %d without a position", b->index, what,
                   pid);
        return false;
    }
    if (!finite_pos(p) || !mmo_aoi_inside(&ctx->aoi, p->x, p->z)) {
        bots_error(ctx->stats, BOTS_ERR_POSITION,
                   "bot %u: %s of PID %d at X %g Y %g Z %g V %g", b->index,
                   what, pid, (double)p->x, (double)p->y, (double)p->z,
                   (double)p->v);
        return false;
    }
    return true;
}

/* Whether a player at (x, z) lies within the nine cells around one of the
   places the server may have the bot at: the last it confirmed, or any
   it was sent to since (the server's view lags by the moves in flight). */
static bool near_bot(const bot_ctx_t *ctx, const bot_t *b, float x, float z)
{
    int cell = mmo_aoi_cell_of(&ctx->aoi, x, z);
    if (mmo_aoi_near(&ctx->aoi, b->seen_cell, cell))
        return true;
    for (uint64_t s = b->confirmed; s < b->sent; s++) {
        if (mmo_aoi_near(&ctx->aoi, b->ring[s % BOT_RING].cell, cell))
            return true;
    }
    return false;
}

static void check_near(bot_ctx_t *ctx, const bot_t *b, int32_t pid,
                       const Pb__Position *p, const char *what)
{
    if (near_bot(ctx, b, p->x, p->z))
        return;
    bots_error(ctx->stats, BOTS_ERR_NOT_NEAR,
               "bot %u (PID %d, at X %.2f Z %.2f, %llu moves unconfirmed) "
               "got %s of PID %d at X %.2f Z %.2f",
               b->index, b->pid, (double)b->seen_x, (double)b->seen_z,
               (unsigned long long)(b->sent - b->confirmed), what, pid,
               (double)p->x, (double)p->z);
}

/* ---- what the bot hears -------------------------------------------------- */

/* Its own Tp 4: the server applied one of its moves not yet confirmed.
   Moves before it were replaced before the server got to them. */
static void on_echo(bot_ctx_t *ctx, bot_t *b, const Pb__Position *p)
{
    for (uint64_t s = b->confirmed; s < b->sent; s++) {
        const bot_move_t *m = &b->ring[s % BOT_RING];
        if (m->x == p->x && m->z == p->z) {
            ctx->stats->c.moves_skipped += s - b->confirmed;
            ctx->stats->c.moves_confirmed++;
            b->confirmed = s + 1;
            b->seen_x = m->x;
            b->seen_z = m->z;
            b->seen_cell = m->cell;
            return;
        }
    }
    bots_error(ctx->stats, BOTS_ERR_ECHO,
               "bot %u (PID %d): its own move to X %.2f Z %.2f, which it "
               "did not send (or was confirmed already)",
               b->index, b->pid, (double)p->x, (double)p->z);
}

/* Another player's Tp 4. When the mover is one of ours, the exact
   position finds its move and when it was sent. */
static void on_moved(bot_ctx_t *ctx, const bot_t *b, int32_t pid,
                     const Pb__Position *p, uint64_t now_ns)
{
    check_near(ctx, b, pid, p, "a move (Tp 4)");
    const bot_t *mover = bot_pidmap_get(&ctx->pids, pid);
    if (mover == NULL)
        return;
    uint64_t oldest = mover->sent > BOT_RING ? mover->sent - BOT_RING : 0;
    for (uint64_t s = mover->sent; s-- > oldest;) {
        const bot_move_t *m = &mover->ring[s % BOT_RING];
        if (m->x == p->x && m->z == p->z) {
            if (m->sent_ns >= ctx->measure_from_ns && now_ns >= m->sent_ns)
                bots_latency(ctx->stats, now_ns - m->sent_ns);
            return;
        }
    }
    ctx->stats->c.latency_unmatched++;
}

static void on_chat(bot_ctx_t *ctx, bot_t *b, const Pb__BroadCast *m)
{
    const char *text =
        m->data_case == PB__BROAD_CAST__DATA_CONTENT ? m->content : NULL;
    size_t len = text != NULL ? strlen(text) : 0;
    if (len == 0 || len > MMO_CHAT_MAX ||
        !mmo_valid_utf8((const unsigned char *)text, len)) {
        bots_error(ctx->stats, BOTS_ERR_CHAT,
                   "bot %u: a chat of PID %d that is empty, above %d bytes "
                   "or not UTF-8 (%zu bytes)",
                   b->index, m->pid, MMO_CHAT_MAX, len);
        return;
    }
    if (m->pid != b->pid) {
        /* In a cluster an ID names its node: chat crossed nodes. */
        if (MMO_PID_NODE(m->pid) != MMO_PID_NODE(b->pid))
            ctx->stats->c.chats_other_nodes++;
        return;
    }
    if (!b->chat_pending || strcmp(text, b->chat) != 0) {
        bots_error(ctx->stats, BOTS_ERR_CHAT,
                   "bot %u (PID %d): heard itself say \"%.60s\"%s", b->index,
                   b->pid, text,
                   b->chat_pending ? "" : " with no chat of its own out");
        return;
    }
    b->chat_pending = false;
    ctx->chats_in_flight--;
    ctx->stats->c.chats_back++;
}

static void on_broadcast(bot_ctx_t *ctx, bot_t *b, const Pb__BroadCast *m,
                         uint64_t now_ns)
{
    bots_counters_t *c = &ctx->stats->c;
    if (m->tp < 1 || m->tp > 4) {
        bots_error(ctx->stats, BOTS_ERR_UNKNOWN_TP,
                   "bot %u: 200 BroadCast with Tp %d", b->index, m->tp);
        return;
    }
    c->broadcast[0]++;
    c->broadcast[m->tp]++;
    if (m->pid <= 0) {
        bots_error(ctx->stats, BOTS_ERR_PID, "bot %u: 200 Tp %d from PID %d",
                   b->index, m->tp, m->pid);
        return;
    }
    const Pb__Position *p =
        m->data_case == PB__BROAD_CAST__DATA_P ? m->p : NULL;
    switch (m->tp) {
    case MMO_TP_CHAT:
        on_chat(ctx, b, m);
        break;
    case MMO_TP_APPEAR:
        if (m->pid == b->pid)
            bots_error(ctx->stats, BOTS_ERR_SEQUENCE,
                       "bot %u (PID %d): its own 200 Tp 2 again", b->index,
                       b->pid);
        else if (check_pos(ctx, b, p, m->pid, "200 Tp 2"))
            check_near(ctx, b, m->pid, p, "an appearance (Tp 2)");
        break;
    case MMO_TP_ACTION:
        if (m->data_case != PB__BROAD_CAST__DATA_ACTION_DATA)
            bots_error(ctx->stats, BOTS_ERR_UNKNOWN_TP,
                       "bot %u: 200 Tp 3 without ActionData", b->index);
        break;
    case MMO_TP_MOVED:
        if (!check_pos(ctx, b, p, m->pid, "200 Tp 4"))
            break;
        if (m->pid == b->pid)
            on_echo(ctx, b, p);
        else
            on_moved(ctx, b, m->pid, p, now_ns);
        break;
    }
}

static void on_sync_players(bot_ctx_t *ctx, bot_t *b, const Pb__SyncPlayers *m)
{
    ctx->stats->c.sync_players++;
    ctx->stats->c.sync_entries += m->n_ps;
    for (size_t i = 0; i < m->n_ps; i++) {
        const Pb__Player *pl = m->ps[i];
        if (pl->pid <= 0)
            bots_error(ctx->stats, BOTS_ERR_PID, "bot %u: 202 lists PID %d",
                       b->index, pl->pid);
        else if (check_pos(ctx, b, pl->p, pl->pid, "202 SyncPlayers"))
            check_near(ctx, b, pl->pid, pl->p, "a listing (202)");
    }
}

static void on_leave(bot_ctx_t *ctx, bot_t *b, const Pb__SyncPID *m)
{
    ctx->stats->c.leaves++;
    if (m->pid <= 0 || m->pid == b->pid)
        bots_error(ctx->stats, BOTS_ERR_PID,
                   "bot %u (PID %d): 201 says PID %d left", b->index, b->pid,
                   m->pid);
}

/* Message 1, the first of all. */
static void on_sync_pid(bot_ctx_t *ctx, bot_t *b, const Pb__SyncPID *m)
{
    bot_t *owner = NULL;
    if (m->pid <= 0) {
        bots_error(ctx->stats, BOTS_ERR_PID, "bot %u: 1 SyncPID gives PID %d",
                   b->index, m->pid);
    } else if (bot_pidmap_put(&ctx->pids, m->pid, b, &owner) != 0) {
        bots_error(ctx->stats, BOTS_ERR_PID,
                   "bot %u: PID %d, which bot %u has already", b->index, m->pid,
                   owner != NULL ? owner->index : 0u);
    } else {
        b->pid = m->pid;
        b->state = BOT_WAIT_SELF;
        return;
    }
    b->state = BOT_GONE; /* it cannot play: count it once, not each time */
}

/* Its own 200 Tp 2, the second message: where the server put it. */
static void on_arrival(bot_ctx_t *ctx, bot_t *b, const Pb__BroadCast *m,
                       uint64_t now_ns)
{
    const Pb__Position *p =
        m->data_case == PB__BROAD_CAST__DATA_P ? m->p : NULL;
    if (m->tp != MMO_TP_APPEAR || m->pid != b->pid) {
        bots_error(ctx->stats, BOTS_ERR_SEQUENCE,
                   "bot %u (PID %d): second message 200 Tp %d of PID %d, "
                   "not its own Tp 2",
                   b->index, b->pid, m->tp, m->pid);
        b->state = BOT_GONE;
        return;
    }
    if (!check_pos(ctx, b, p, m->pid, "its own 200 Tp 2")) {
        b->state = BOT_GONE;
        return;
    }
    b->x = b->seen_x = p->x;
    b->y = p->y;
    b->z = b->seen_z = p->z;
    b->v = p->v;
    b->seen_cell = mmo_aoi_cell_of(&ctx->aoi, p->x, p->z);
    b->state = BOT_IN;
    ctx->stats->c.joined++;
    if (ctx->on_join != NULL)
        ctx->on_join(ctx->udata, b, now_ns);
}

/* Decodes with the arena; NULL (an error counted) when malformed. */
#define DECODE(ctx, b, type, fn, id, data, len) \
    ((type *)decoded(                           \
        ctx, b, id,                             \
        (ProtobufCMessage *)fn##__unpack(&(ctx)->arena.allocator, len, data)))

static ProtobufCMessage *decoded(bot_ctx_t *ctx, const bot_t *b,
                                 uint32_t msg_id, ProtobufCMessage *m)
{
    if (m == NULL)
        bots_error(ctx->stats, BOTS_ERR_MALFORMED,
                   "bot %u: message %u is not its protobuf", b->index, msg_id);
    return m;
}

static void release(bot_ctx_t *ctx, void *m)
{
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, &ctx->arena.allocator);
    pb_arena_reset(&ctx->arena);
}

static void waiting_pid(bot_ctx_t *ctx, bot_t *b, uint32_t msg_id,
                        const uint8_t *data, size_t len)
{
    if (msg_id != MMO_MSG_SYNC_PID) {
        bots_error(ctx->stats, BOTS_ERR_SEQUENCE,
                   "bot %u: first message %u, not 1 SyncPID", b->index, msg_id);
        b->state = BOT_GONE;
        return;
    }
    Pb__SyncPID *m =
        DECODE(ctx, b, Pb__SyncPID, pb__sync_pid, msg_id, data, len);
    if (m != NULL)
        on_sync_pid(ctx, b, m);
    else
        b->state = BOT_GONE;
    release(ctx, m);
}

static void waiting_self(bot_ctx_t *ctx, bot_t *b, uint32_t msg_id,
                         const uint8_t *data, size_t len, uint64_t now_ns)
{
    if (msg_id != MMO_MSG_BROADCAST) {
        bots_error(ctx->stats, BOTS_ERR_SEQUENCE,
                   "bot %u (PID %d): second message %u, not 200", b->index,
                   b->pid, msg_id);
        b->state = BOT_GONE;
        return;
    }
    Pb__BroadCast *m =
        DECODE(ctx, b, Pb__BroadCast, pb__broad_cast, msg_id, data, len);
    if (m != NULL) {
        ctx->stats->c.broadcast[0]++;
        ctx->stats->c.broadcast[MMO_TP_APPEAR]++;
        on_arrival(ctx, b, m, now_ns);
    } else {
        b->state = BOT_GONE;
    }
    release(ctx, m);
}

static void playing(bot_ctx_t *ctx, bot_t *b, uint32_t msg_id,
                    const uint8_t *data, size_t len, uint64_t now_ns)
{
    switch (msg_id) {
    case MMO_MSG_SYNC_PID:
        bots_error(ctx->stats, BOTS_ERR_SEQUENCE,
                   "bot %u (PID %d): 1 SyncPID again", b->index, b->pid);
        break;
    case MMO_MSG_BROADCAST: {
        Pb__BroadCast *m =
            DECODE(ctx, b, Pb__BroadCast, pb__broad_cast, msg_id, data, len);
        if (m != NULL)
            on_broadcast(ctx, b, m, now_ns);
        release(ctx, m);
        break;
    }
    case MMO_MSG_LEAVE: {
        Pb__SyncPID *m =
            DECODE(ctx, b, Pb__SyncPID, pb__sync_pid, msg_id, data, len);
        if (m != NULL)
            on_leave(ctx, b, m);
        release(ctx, m);
        break;
    }
    case MMO_MSG_SYNC_PLAYERS: {
        Pb__SyncPlayers *m = DECODE(ctx, b, Pb__SyncPlayers, pb__sync_players,
                                    msg_id, data, len);
        if (m != NULL)
            on_sync_players(ctx, b, m);
        release(ctx, m);
        break;
    }
    default:
        bots_error(ctx->stats, BOTS_ERR_UNKNOWN_ID,
                   "bot %u (PID %d): message ID %u", b->index, b->pid, msg_id);
        break;
    }
}

void bot_on_message(bot_ctx_t *ctx, bot_t *b, uint32_t msg_id,
                    const uint8_t *data, size_t len, uint64_t now_ns)
{
    ctx->stats->c.frames++;
    ctx->stats->c.bytes += len;
    switch (b->state) {
    case BOT_WAIT_PID:
        waiting_pid(ctx, b, msg_id, data, len);
        break;
    case BOT_WAIT_SELF:
        waiting_self(ctx, b, msg_id, data, len, now_ns);
        break;
    case BOT_IN:
        playing(ctx, b, msg_id, data, len, now_ns);
        break;
    case BOT_IDLE:
    case BOT_GONE:
        break; /* after an error counted once, or its end */
    }
}

/* ---- what the bot does --------------------------------------------------- */

bool bot_may_move(const bot_t *b, uint64_t now_ns)
{
    if (b->state != BOT_IN)
        return false;
    uint64_t out = b->sent - b->confirmed;
    if (out == 0)
        return true;
    const bot_move_t *oldest = &b->ring[b->confirmed % BOT_RING];
    return out < BOT_WINDOW && now_ns - oldest->sent_ns < BOT_HOLD_MS * MS_NS;
}

static int send_move(bot_ctx_t *ctx, bot_t *b, float x, float z, float v,
                     uint64_t now_ns)
{
    Pb__Position p = PB__POSITION__INIT;
    p.x = x;
    p.y = b->y;
    p.z = z;
    p.v = v;
    uint8_t buf[32];
    size_t len = pb__position__pack(&p, buf);
    int rc = ctx->send(ctx->udata, b, MMO_MSG_MOVE, buf, len);
    if (rc != 0)
        return rc;
    bot_move_t *m = &b->ring[b->sent % BOT_RING];
    m->x = x;
    m->z = z;
    m->cell = mmo_aoi_cell_of(&ctx->aoi, x, z);
    m->sent_ns = now_ns;
    b->sent++;
    b->x = x;
    b->z = z;
    b->v = v;
    ctx->stats->c.moves_sent++;
    return 0;
}

/* v + d kept inside [lo, hi] by bouncing off the edge (d is smaller than
   the range), so a bot at an edge does not stand still there. */
static float bounce(float v, float d, float lo, float hi)
{
    float r = v + d;
    if (r < lo)
        r = lo + (lo - r);
    if (r > hi)
        r = hi - (r - hi);
    return r < lo ? lo : r > hi ? hi : r;
}

void bot_ctx_crowd(bot_ctx_t *ctx)
{
    ctx->box[0] = BOT_SPAWN_X;
    ctx->box[1] = BOT_SPAWN_X + BOT_SPAWN_SIZE;
    ctx->box[2] = BOT_SPAWN_Z;
    ctx->box[3] = BOT_SPAWN_Z + BOT_SPAWN_SIZE;
}

int bot_move(bot_ctx_t *ctx, bot_t *b, uint64_t now_ns)
{
    const float *box = ctx->box;
    float dx = (rand_unit(ctx) * 2.0f - 1.0f) * BOT_STEP;
    float dz = (rand_unit(ctx) * 2.0f - 1.0f) * BOT_STEP;
    /* A bot outside the box (sent there before) steps inside it first. */
    float x = bounce(b->x < box[0] || b->x > box[1] ? box[0] : b->x, dx, box[0],
                     box[1]);
    float z = bounce(b->z < box[2] || b->z > box[3] ? box[2] : b->z, dz, box[2],
                     box[3]);
    /* A move to where it stands could not be told from the last one. */
    if (x == b->x && z == b->z)
        x = bounce(x, x < (box[0] + box[1]) / 2 ? 1.0f : -1.0f, box[0], box[1]);
    float v = rand_unit(ctx) < 0.5f ? V_SLOW : V_FAST;
    return send_move(ctx, b, x, z, v, now_ns);
}

int bot_jump(bot_ctx_t *ctx, bot_t *b, uint64_t now_ns)
{
    const mmo_aoi_t *a = &ctx->aoi;
    float x = (float)a->min_x + rand_unit(ctx) * (float)(a->max_x - a->min_x);
    float z = (float)a->min_z + rand_unit(ctx) * (float)(a->max_z - a->min_z);
    return send_move(ctx, b, x, z, b->v, now_ns);
}

bool bot_may_chat(const bot_ctx_t *ctx, const bot_t *b)
{
    return b->state == BOT_IN && !b->chat_pending &&
           ctx->chats_in_flight < ctx->chat_cap;
}

int bot_chat(bot_ctx_t *ctx, bot_t *b, uint64_t now_ns)
{
    snprintf(b->chat, sizeof(b->chat), "hello, I am player %d", b->pid);
    Pb__Talk t = PB__TALK__INIT;
    t.content = b->chat;
    uint8_t buf[64];
    size_t len = pb__talk__pack(&t, buf);
    int rc = ctx->send(ctx->udata, b, MMO_MSG_TALK, buf, len);
    if (rc != 0)
        return rc;
    b->chat_pending = true;
    b->chat_sent_ns = now_ns;
    ctx->chats_in_flight++;
    ctx->stats->c.chats_sent++;
    return 0;
}

void bot_check_chat(bot_ctx_t *ctx, bot_t *b, uint64_t now_ns)
{
    if (!b->chat_pending || now_ns - b->chat_sent_ns < BOT_CHAT_LOST_MS * MS_NS)
        return;
    b->chat_pending = false;
    ctx->chats_in_flight--;
    if (ctx->chat_over_rate)
        ctx->stats->c.chats_refused++;
    else
        bots_error(ctx->stats, BOTS_ERR_CHAT_LOST,
                   "bot %u (PID %d): its chat did not come back in %u ms",
                   b->index, b->pid, BOT_CHAT_LOST_MS);
}
