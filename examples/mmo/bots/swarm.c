/* The swarm: see swarm.h. */
#include "swarm.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zinx.h>

#include "bot.h"
#include "protocol.h"

/* The swarm's clock: bots are scheduled and dialed every TICK_MS. */
#define TICK_MS 5u
/* Bounds of the phases before the run, beyond the dialing itself. */
#define STALL_MS 20000u
/* The quiet before the run: measured over windows of SETTLE_WINDOW_MS,
   waited for at most SETTLE_MAX_MS. */
#define SETTLE_WINDOW_MS 500u
#define SETTLE_MAX_MS 120000u
#define ARRIVING_MAX 64u
/* The largest frame the bots take (the server splits 202 to fit its
   MaxPacketSize; this leaves room for a server configured larger). */
#define MAX_FRAME (64u * 1024u)
/* After a signal, how long to wait for the I/O thread to wind up. */
#define STOP_WAIT_MS 10000u

#define S_NS 1000000000ull
#define MS_NS 1000000ull

typedef enum phase {
    PHASE_CONNECT,
    PHASE_SETTLE,
    PHASE_RUN,
    PHASE_DONE
} phase_t;

struct bots_swarm {
    bots_options_t opt;
    zinx_server_t *ep;
    zinx_timer_t *tick;
    bot_t *bots;
    zinx_dialer_t **dialers; /* [0, dialed): the I/O thread's while it runs */
    bots_stats_t stats;
    bot_ctx_t ctx;
    bots_result_t result;

    /* The I/O thread's. */
    phase_t phase;
    uint32_t dialed;
    uint64_t start_ns, progress_ns;
    uint32_t placed, dialed_seen; /* at the last progress */
    uint64_t settle_from_ns, window_ns, window_frames;
    uint64_t run_start_ns, step_start_ns, step_ns, next_progress_ns;
    uint64_t move_period_ns, chat_period_ns;
    bots_counters_t at_run, at_step, at_progress;
    bots_proc_sample_t server_at_step;
    bool server_ok;
    bool step_open; /* a step is being measured */
    bool stopping;  /* connections ending now are no errors */

    /* Between the threads. */
    atomic_bool stop_asked; /* by the caller's thread: a signal */
    atomic_bool done;       /* by the I/O thread: all said */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * S_NS + (uint64_t)ts.tv_nsec;
}

static double secs(uint64_t ns)
{
    return (double)ns / (double)S_NS;
}

/* A random time in [0, period), to spread the bots' beats. */
static uint64_t phase_of(bots_swarm_t *s, uint64_t period)
{
    if (period == 0)
        return 0;
    s->ctx.rng ^= s->ctx.rng >> 12;
    s->ctx.rng ^= s->ctx.rng << 25;
    s->ctx.rng ^= s->ctx.rng >> 27;
    return (s->ctx.rng * 2685821657736338717ull) % period;
}

/* ---- the bots' connections (I/O thread) ---------------------------------- */

static int send_for_bot(void *udata, bot_t *b, uint32_t msg_id,
                        const void *data, size_t len)
{
    (void)udata;
    if (b->link == NULL)
        return ZINX_ECLOSED;
    return zinx_conn_send_msg(b->link, msg_id, data, (uint32_t)len);
}

/* A send refused for another reason than a connection already ending
   (counted when it ends) is an error. */
static void sent(bots_swarm_t *s, const bot_t *b, int rc, const char *what)
{
    if (rc != 0 && rc != ZINX_ECLOSED)
        bots_error(&s->stats, BOTS_ERR_SEND, "bot %u (PID %d): %s: %s",
                   b->index, b->pid, what, zinx_strerror(rc));
}

static void on_join(void *udata, bot_t *b, uint64_t now)
{
    bots_swarm_t *s = udata;
    s->result.joined++;
    if (s->opt.spawn == BOTS_SPAWN_SPREAD)
        sent(s, b, bot_jump(&s->ctx, b, now), "its first move");
}

static void on_dial_event(zinx_dialer_t *d, zinx_dial_event_t ev, int status,
                          uint32_t attempt, uint32_t next_delay_ms, void *udata)
{
    (void)attempt;
    (void)next_delay_ms;
    bot_t *b = udata;
    bots_swarm_t *s = b->owner;
    if (ev == ZINX_DIAL_CONNECTED) {
        zinx_conn_t *c = zinx_dialer_conn(d);
        if (c == NULL)
            return; /* gone already: its stop hook said so */
        b->link = c;
        zinx_conn_set_data(c, b);
        s->result.connected++;
        bot_connected(b);
    } else if (ev == ZINX_DIAL_FAILED && b->state == BOT_IDLE) {
        if (!s->stopping)
            bots_error(&s->stats, BOTS_ERR_CONNECT, "bot %u: %s", b->index,
                       zinx_strerror(status));
        bot_gone(&s->ctx, b);
    }
}

static void on_conn_stop(zinx_conn_t *conn, void *udata)
{
    bots_swarm_t *s = udata;
    bot_t *b = zinx_conn_data(conn);
    if (b == NULL)
        return;
    zinx_conn_set_data(conn, NULL);
    if (!s->stopping && b->state != BOT_GONE) {
        int why = zinx_conn_close_reason(conn);
        bots_error(&s->stats, BOTS_ERR_DISCONNECTED,
                   "bot %u (PID %d): the connection ended (%s)", b->index,
                   b->pid,
                   why != 0 ? zinx_strerror(why) : "closed by the server");
    }
    bot_gone(&s->ctx, b);
    if (b->link == conn) {
        zinx_conn_unref(conn);
        b->link = NULL;
    }
}

static void on_message(zinx_request_t *req, void *udata)
{
    bots_swarm_t *s = udata;
    bot_t *b = zinx_conn_data(zinx_request_conn(req));
    if (b != NULL)
        bot_on_message(&s->ctx, b, zinx_request_msg_id(req),
                       zinx_request_data(req), zinx_request_data_len(req),
                       now_ns());
}

/* ---- phases (I/O thread) ------------------------------------------------- */

/* Dials the bots due by now at --connect-rate, at most room of them. */
static void dial_due(bots_swarm_t *s, uint64_t now, uint32_t room)
{
    uint64_t due = (now - s->start_ns) * s->opt.connect_rate / S_NS + 1;
    for (; room > 0 && s->dialed < s->opt.players && s->dialed < due; room--) {
        bot_t *b = &s->bots[s->dialed];
        zinx_dial_opts_t o = {
            .connect_timeout_ms = 10000, .on_event = on_dial_event, .udata = b};
        int rc = zinx_server_dial(s->ep, s->opt.host, s->opt.port, &o,
                                  &s->dialers[s->dialed]);
        if (rc != 0) {
            s->dialers[s->dialed] = NULL;
            bots_error(&s->stats, BOTS_ERR_CONNECT, "bot %u: dial: %s",
                       b->index, zinx_strerror(rc));
            bot_gone(&s->ctx, b);
        }
        s->dialed++;
    }
}

static void sample_server(bots_swarm_t *s, bots_proc_sample_t *out, bool *ok)
{
    *ok = s->opt.server_pid > 0 && bots_proc_sample(s->opt.server_pid, out);
}

static void begin_step(bots_swarm_t *s, uint64_t now)
{
    uint32_t i = s->result.nsteps;
    double hz = s->opt.nsteps > 0 ? s->opt.steps[i] : s->opt.move_hz;
    double len = s->opt.nsteps > 0 ? s->opt.step_s : s->opt.duration_s;
    s->result.steps[i].move_hz = hz;
    s->step_start_ns = now;
    s->step_ns = (uint64_t)(len * (double)S_NS);
    s->move_period_ns = hz > 0 ? (uint64_t)((double)S_NS / hz) : 0;
    s->chat_period_ns =
        s->opt.chat_hz > 0 ? (uint64_t)((double)S_NS / s->opt.chat_hz) : 0;
    for (uint32_t k = 0; k < s->opt.players; k++) {
        s->bots[k].next_move_ns = now + phase_of(s, s->move_period_ns);
        s->bots[k].next_chat_ns = now + phase_of(s, s->chat_period_ns);
    }
    s->at_step = s->stats.c;
    s->step_open = true;
    bench_hist_init(&s->stats.step_latency);
    sample_server(s, &s->server_at_step, &s->server_ok);
}

static void end_step(bots_swarm_t *s, uint64_t now)
{
    bots_step_t *st = &s->result.steps[s->result.nsteps++];
    s->step_open = false;
    st->seconds = secs(now - s->step_start_ns);
    bots_counters_sub(&st->c, &s->stats.c, &s->at_step);
    const bench_hist_t *h = &s->stats.step_latency;
    st->p50_ns = bench_hist_quantile(h, 0.50);
    st->p99_ns = bench_hist_quantile(h, 0.99);
    st->max_ns = h->count ? h->max : 0;
    bots_proc_sample_t end;
    bool ok;
    sample_server(s, &end, &ok);
    st->server_sampled = ok && s->server_ok && st->seconds > 0;
    if (st->server_sampled) {
        st->server_cpu_pct =
            100.0 * (end.cpu_s - s->server_at_step.cpu_s) / st->seconds;
        st->server_rss = end.rss_bytes;
    }
    if (s->opt.nsteps > 0)
        fprintf(stderr,
                "zinx-mmo-bots: step %u: %.2f moves/s per bot: %.0f moves/s "
                "confirmed, %.0f broadcasts/s, p99 %.1f ms, server %.0f %% "
                "CPU\n",
                s->result.nsteps, st->move_hz,
                (double)st->c.moves_confirmed / st->seconds,
                (double)st->c.broadcast[0] / st->seconds,
                (double)st->p99_ns / 1e6, st->server_cpu_pct);
}

/* The run is over: what is measured stops here, connections ending from
   now on are expected, and the caller's thread is told. */
static void finish(bots_swarm_t *s, uint64_t now)
{
    if (s->phase == PHASE_DONE)
        return;
    if (s->phase == PHASE_RUN) {
        if (s->step_open && now > s->step_start_ns)
            end_step(s, now);
        bots_counters_sub(&s->result.run, &s->stats.c, &s->at_run);
        s->result.run_s = secs(now - s->run_start_ns);
    }
    s->result.total = s->stats.c;
    s->phase = PHASE_DONE;
    s->stopping = true;
    atomic_store(&s->done, true);
}

static void start_run(bots_swarm_t *s, uint64_t now)
{
    s->phase = PHASE_RUN;
    s->result.run_started = true;
    s->run_start_ns = now;
    s->next_progress_ns = now + (uint64_t)(s->opt.progress_s * (double)S_NS);
    s->ctx.measure_from_ns = now;
    s->at_run = s->at_progress = s->stats.c;
    bench_hist_init(&s->stats.run_latency);
    begin_step(s, now);
}

/* Whether a bot has arrived for good: in the world and, with --spawn
   spread, its move away from the spawn area confirmed; or given up. */
static bool placed(const bots_swarm_t *s, const bot_t *b)
{
    if (b->state == BOT_GONE)
        return true;
    return b->state == BOT_IN &&
           (s->opt.spawn != BOTS_SPAWN_SPREAD || b->confirmed == b->sent);
}

static uint32_t count_placed(const bots_swarm_t *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->dialed; i++)
        n += placed(s, &s->bots[i]);
    return n;
}

static void give_up_joining(bots_swarm_t *s, uint64_t now)
{
    for (uint32_t i = 0; i < s->opt.players; i++) {
        bot_t *b = &s->bots[i];
        if (placed(s, b))
            continue;
        bots_error(&s->stats, BOTS_ERR_NOT_JOINED,
                   "bot %u: not in place after %.0f s, nothing new for %u s "
                   "(%s)",
                   i, secs(now - s->start_ns), STALL_MS / 1000,
                   b->state == BOT_IDLE       ? "not connected"
                   : b->state == BOT_WAIT_PID ? "no 1 SyncPID"
                   : b->state == BOT_WAIT_SELF
                       ? "no own 200 Tp 2"
                       : "its move away from the spawn area not confirmed");
        bot_gone(&s->ctx, b);
    }
}

/* Dials at --connect-rate; with --spawn spread, only while fewer than
   ARRIVING_MAX bots are on their way in, so the spawn area never holds a
   crowd: everyone there hears of every arrival, a cost that grows with
   the square of the crowd. The phase ends when every bot is in place, or
   when nothing has moved on for STALL_MS (each bot not in place is then
   an error). */
static void connect_phase(bots_swarm_t *s, uint64_t now)
{
    uint32_t done = count_placed(s);
    if (done != s->placed || s->dialed != s->dialed_seen) {
        s->placed = done;
        s->dialed_seen = s->dialed;
        s->progress_ns = now;
    }
    uint32_t arriving = s->dialed - done;
    uint32_t room = s->opt.players;
    if (s->opt.spawn == BOTS_SPAWN_SPREAD)
        room = arriving < ARRIVING_MAX ? ARRIVING_MAX - arriving : 0;
    dial_due(s, now, room);
    bool stalled = now - s->progress_ns > STALL_MS * MS_NS;
    if (s->placed < s->opt.players && !stalled)
        return;
    if (s->placed < s->opt.players)
        give_up_joining(s, now);
    s->result.connect_s = secs(now - s->start_ns);
    s->phase = PHASE_SETTLE;
    s->settle_from_ns = s->window_ns = now;
    s->window_frames = s->stats.c.frames;
}

/* Arrivals leave a backlog of messages on their way (each arrival is
   heard by everyone around it): the run starts once it has drained, when
   the bots hear almost nothing for a while, so a run measures moves, not
   the tail of the arrivals. */
static void settle_phase(bots_swarm_t *s, uint64_t now)
{
    if (now - s->window_ns < SETTLE_WINDOW_MS * MS_NS)
        return;
    uint64_t heard = s->stats.c.frames - s->window_frames;
    s->window_ns = now;
    s->window_frames = s->stats.c.frames;
    bool quiet = heard <= s->opt.players / 20 + 10;
    if (!quiet && now - s->settle_from_ns < SETTLE_MAX_MS * MS_NS)
        return;
    s->result.settled = quiet;
    s->result.settle_s = secs(now - s->settle_from_ns);
    start_run(s, now);
}

/* One bot's beat: a move and a chat when due. A bot that falls behind
   (its window full, or the thread late) skips beats rather than sending
   them in a burst. */
static void play(bots_swarm_t *s, bot_t *b, uint64_t now)
{
    if (s->move_period_ns != 0 && now >= b->next_move_ns) {
        if (bot_may_move(b, now))
            sent(s, b, bot_move(&s->ctx, b, now), "a move");
        else
            s->stats.c.moves_held++;
        b->next_move_ns += s->move_period_ns;
        if (b->next_move_ns <= now)
            b->next_move_ns = now + s->move_period_ns;
    }
    if (s->chat_period_ns != 0 && now >= b->next_chat_ns) {
        if (bot_may_chat(&s->ctx, b))
            sent(s, b, bot_chat(&s->ctx, b, now), "a chat");
        else
            s->stats.c.chats_held++;
        b->next_chat_ns += s->chat_period_ns;
        if (b->next_chat_ns <= now)
            b->next_chat_ns = now + s->chat_period_ns;
    }
    bot_check_chat(&s->ctx, b, now);
}

static void progress(bots_swarm_t *s, uint64_t now)
{
    if (s->opt.progress_s <= 0 || now < s->next_progress_ns)
        return;
    double len = s->opt.progress_s;
    bots_counters_t d;
    bots_counters_sub(&d, &s->stats.c, &s->at_progress);
    s->at_progress = s->stats.c;
    s->next_progress_ns = now + (uint64_t)(len * (double)S_NS);
    fprintf(stderr,
            "zinx-mmo-bots: %.0f s: %u in the world, %.0f moves/s, %.1f "
            "chats/s, %.0f broadcasts/s received, p99 %.1f ms, %llu errors\n",
            secs(now - s->run_start_ns), s->result.joined,
            (double)d.moves_sent / len, (double)d.chats_sent / len,
            (double)d.broadcast[0] / len,
            (double)bench_hist_quantile(&s->stats.run_latency, 0.99) / 1e6,
            (unsigned long long)s->stats.errors_total);
}

static void run_phase(bots_swarm_t *s, uint64_t now)
{
    for (uint32_t i = 0; i < s->opt.players; i++) {
        if (s->bots[i].state == BOT_IN)
            play(s, &s->bots[i], now);
    }
    progress(s, now);
    if (s->step_ns == 0 || now - s->step_start_ns < s->step_ns)
        return;
    end_step(s, now);
    const bots_step_t *st = &s->result.steps[s->result.nsteps - 1];
    bool saturated =
        s->opt.stop_p99_ms > 0 && (double)st->p99_ns > s->opt.stop_p99_ms * 1e6;
    if (s->opt.nsteps == 0 || s->result.nsteps >= s->opt.nsteps || saturated) {
        finish(s, now);
        return;
    }
    begin_step(s, now);
}

static void on_tick(zinx_timer_t *t, zinx_conn_t *conn, void *udata)
{
    (void)t;
    (void)conn;
    bots_swarm_t *s = udata;
    uint64_t now = now_ns();
    if (atomic_load(&s->stop_asked) && s->phase != PHASE_DONE) {
        s->result.interrupted = true;
        finish(s, now);
    }
    switch (s->phase) {
    case PHASE_CONNECT:
        connect_phase(s, now);
        break;
    case PHASE_SETTLE:
        settle_phase(s, now);
        break;
    case PHASE_RUN:
        run_phase(s, now);
        break;
    case PHASE_DONE:
        break;
    }
}

/* ---- the caller's thread ------------------------------------------------- */

bots_swarm_t *bots_swarm_new(const bots_options_t *o)
{
    bots_swarm_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->opt = *o;
    s->result.players = o->players;
    bots_stats_init(&s->stats);
    s->bots = calloc(o->players, sizeof(*s->bots));
    s->dialers = calloc(o->players, sizeof(*s->dialers));
    uint64_t seed = o->seed ? o->seed : now_ns() ^ 0x9E3779B97F4A7C15ull;
    if (s->bots == NULL || s->dialers == NULL ||
        !bot_ctx_init(&s->ctx, o->players, &s->stats, send_for_bot, s, seed)) {
        free(s->bots);
        free(s->dialers);
        free(s);
        return NULL;
    }
    s->ctx.on_join = on_join;
    if (o->crowd)
        bot_ctx_crowd(&s->ctx);
    s->ctx.chat_over_rate = o->chat_hz > MMO_CHAT_PER_S;
    for (uint32_t i = 0; i < o->players; i++) {
        bot_init(&s->bots[i], i);
        s->bots[i].owner = s;
    }
    atomic_init(&s->stop_asked, false);
    atomic_init(&s->done, false);
    return s;
}

void bots_swarm_free(bots_swarm_t *s)
{
    if (s == NULL)
        return;
    bot_ctx_free(&s->ctx);
    free(s->bots);
    free(s->dialers);
    free(s);
}

const bots_result_t *bots_swarm_result(const bots_swarm_t *s)
{
    return &s->result;
}

const bots_stats_t *bots_swarm_stats(const bots_swarm_t *s)
{
    return &s->stats;
}

/* The client endpoint: ltv_le, one I/O thread running the handlers. */
static int make_endpoint(bots_swarm_t *s)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    snprintf(cfg.name, sizeof(cfg.name), "zinx-mmo-bots");
    cfg.packet_format = ZINX_FORMAT_LTV_LE;
    cfg.io_threads = 1;
    cfg.worker_pool_size = 0;
    cfg.max_packet_size = MAX_FRAME;
    cfg.max_conn = (int)s->opt.players + 16;
    cfg.log_isolation_level = 2; /* warnings and errors */
    s->ep = zinx_client_new(&cfg);
    if (s->ep == NULL)
        return ZINX_ENOMEM;
    zinx_router_t all = {.handle = on_message, .udata = s};
    int rc = zinx_server_set_fallback_router(s->ep, &all);
    if (rc == 0)
        rc = zinx_server_on_conn_stop(s->ep, on_conn_stop, s);
    if (rc == 0)
        rc = zinx_server_start(s->ep);
    return rc;
}

/* Waits for the I/O thread to be done, or for a signal: then asks it to
   finish and waits a little more. */
static void wait_done(bots_swarm_t *s, const sigset_t *sigs)
{
    uint64_t give_up = 0;
    while (!atomic_load(&s->done)) {
        struct timespec tmo = {0, 100 * 1000 * 1000};
        int sig = sigtimedwait(sigs, NULL, &tmo);
        if (sig > 0) {
            if (give_up != 0)
                return; /* a second signal: now */
            atomic_store(&s->stop_asked, true);
            give_up = now_ns() + STOP_WAIT_MS * MS_NS;
        }
        if (give_up != 0 && now_ns() > give_up)
            return;
    }
}

int bots_swarm_run(bots_swarm_t *s, const sigset_t *sigs)
{
    int rc = make_endpoint(s);
    if (rc != 0) {
        zinx_server_free(s->ep);
        s->ep = NULL;
        return rc;
    }
    s->start_ns = s->progress_ns = now_ns();
    rc = zinx_timer_every(s->ep, TICK_MS, on_tick, s, &s->tick);
    if (rc == 0)
        wait_done(s, sigs);
    /* The tick no longer runs: the dialers are ours to close. Each close
       ends its connection; `stopping` keeps those ends from counting. */
    if (s->tick != NULL)
        zinx_timer_cancel(s->tick);
    for (uint32_t i = 0; i < s->dialed; i++)
        zinx_dialer_close(s->dialers[i]);
    zinx_server_free(s->ep);
    s->ep = NULL;
    return rc;
}
