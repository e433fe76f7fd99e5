/*
 * T7, slowloris, idle and heartbeat: a frame that has started must be
 * complete within FrameTimeoutMs however slowly its bytes trickle in;
 * silent connections go at IdleTimeoutMs; with HeartbeatCountAcks a
 * client that only receives is kept alive by the heartbeat, while one
 * whose socket stopped taking data is found not alive (custom on_dead
 * hook). A new client is served promptly all along.
 *
 * T26, Zinx's heartbeat rule (the default): a peer that sends nothing is
 * cut when HeartbeatMax has passed, even while its kernel acknowledges.
 *
 * What loopback cannot show: a peer that vanishes outright (no more ACKs
 * at all). The kernel answers for a process that stopped reading (and
 * for a SIGSTOPped one alike): it ACKs our data while its receive buffer
 * has room and then answers zero-window probes. Those answers count as
 * life, so the not-alive path is reached only once the probes' back-off
 * leaves gaps longer than HeartbeatMax; the test relies on that, with a
 * generous bound. A blackholed peer needs a network namespace (T18).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "test_bystander.h"
#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

/* ---- frame deadline ------------------------------------------------------ */

#define FRAME_TIMEOUT_MS 500u

typedef enum trickle_kind {
    TRICKLE_HEADER_100MS, /* header bytes one by one, 100 ms apart */
    TRICKLE_HEADER_300MS, /* the same, 300 ms apart */
    TRICKLE_BODY_50MS,    /* whole header at once, body bytes 50 ms apart */
    TRICKLE_GOOD_FRAMES,  /* each frame within the deadline, many frames */
} trickle_kind_t;

typedef struct trickler {
    trickle_kind_t kind;
    int fd;
    uint8_t frame[ZINX_HEADER_LEN + 100];
    size_t frame_len, sent;
    unsigned interval_ms;
    uint64_t first_ms, next_ms, closed_ms;
    int replies;
    size_t rx_len;
    uint8_t rx[64];
} trickler_t;

static void trickler_init(trickler_t *t, trickle_kind_t kind, int port)
{
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    t->fd = tc_connect(port);
    assert_true(t->fd >= 0);
    switch (kind) {
    case TRICKLE_HEADER_100MS:
    case TRICKLE_HEADER_300MS:
        t->frame_len =
            frame_encode(ZINX_FORMAT_TLV, TC_ECHO_ID, NULL, 0, t->frame);
        t->interval_ms = kind == TRICKLE_HEADER_100MS ? 100 : 300;
        break;
    case TRICKLE_BODY_50MS: {
        uint8_t body[100];
        memset(body, 'b', sizeof(body));
        t->frame_len = frame_encode(ZINX_FORMAT_TLV, TC_ECHO_ID, body,
                                    sizeof(body), t->frame);
        t->interval_ms = 50;
        break;
    }
    case TRICKLE_GOOD_FRAMES:
        /* 8 bytes 40 ms apart: 280 ms per frame, under the deadline. */
        t->frame_len =
            frame_encode(ZINX_FORMAT_TLV, TC_ECHO_ID, NULL, 0, t->frame);
        t->interval_ms = 40;
        break;
    }
}

static bool trickler_expects_close(const trickler_t *t)
{
    return t->kind != TRICKLE_GOOD_FRAMES;
}

static void trickler_send(trickler_t *t, uint64_t now)
{
    size_t n = 1;
    if (t->kind == TRICKLE_BODY_50MS && t->sent == 0)
        n = ZINX_HEADER_LEN;
    if (t->sent == 0 && t->first_ms == 0)
        t->first_ms = now;
    if (send(t->fd, t->frame + t->sent, n, MSG_NOSIGNAL | MSG_DONTWAIT) ==
        (ssize_t)n)
        t->sent += n;
    t->next_ms = now + t->interval_ms;
    if (t->sent == t->frame_len) {
        if (t->kind == TRICKLE_GOOD_FRAMES)
            t->sent = 0; /* the next frame starts at the next tick */
        else
            t->next_ms = UINT64_MAX; /* finished: only the close counts */
    }
}

/* Reads echo replies; notes the close. */
static void trickler_read(trickler_t *t, uint64_t now)
{
    for (;;) {
        ssize_t n = recv(t->fd, t->rx + t->rx_len, sizeof(t->rx) - t->rx_len,
                         MSG_DONTWAIT);
        if (n > 0) {
            t->rx_len += (size_t)n;
            while (t->rx_len >= ZINX_HEADER_LEN) {
                t->replies++;
                t->rx_len -= ZINX_HEADER_LEN;
                memmove(t->rx, t->rx + ZINX_HEADER_LEN, t->rx_len);
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        t->closed_ms = now;
        return;
    }
}

static void t7_frame_deadline(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.frame_timeout_ms = FRAME_TIMEOUT_MS;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);

    static const trickle_kind_t plan[] = {
        TRICKLE_HEADER_100MS, TRICKLE_HEADER_100MS, TRICKLE_HEADER_100MS,
        TRICKLE_HEADER_100MS, TRICKLE_HEADER_100MS, TRICKLE_HEADER_300MS,
        TRICKLE_HEADER_300MS, TRICKLE_HEADER_300MS, TRICKLE_BODY_50MS,
        TRICKLE_BODY_50MS,    TRICKLE_BODY_50MS,    TRICKLE_GOOD_FRAMES,
        TRICKLE_GOOD_FRAMES,
    };
    enum { N = sizeof(plan) / sizeof(plan[0]) };
    trickler_t t[N];
    int expect_closed = 0;
    for (int i = 0; i < N; i++) {
        trickler_init(&t[i], plan[i], port);
        expect_closed += trickler_expects_close(&t[i]);
    }

    uint64_t start = tf_now_ms(), end = start + 2000;
    long legit_ms = -1;
    while (tf_now_ms() < end) {
        uint64_t now = tf_now_ms();
        struct pollfd pfd[N];
        for (int i = 0; i < N; i++) {
            if (t[i].closed_ms == 0 && now >= t[i].next_ms)
                trickler_send(&t[i], now);
            pfd[i].fd = t[i].closed_ms == 0 ? t[i].fd : -1;
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }
        poll(pfd, N, 5);
        now = tf_now_ms();
        for (int i = 0; i < N; i++) {
            if (pfd[i].revents != 0)
                trickler_read(&t[i], now);
        }
        if (legit_ms < 0 && now - start >= 250) {
            /* A newcomer while the tricklers hold their connections. */
            uint64_t t0 = tf_now_ms();
            int fd = tc_connect(port);
            assert_true(fd >= 0);
            assert_int_equal(tc_echo_call(fd, ZINX_FORMAT_TLV, "new", 3, 1000),
                             0);
            legit_ms = (long)(tf_now_ms() - t0);
            close(fd);
        }
    }

    for (int i = 0; i < N; i++) {
        long lived =
            t[i].closed_ms ? (long)(t[i].closed_ms - t[i].first_ms) : -1;
        tf_note("T7 trickler %d kind %d: closed after %ld ms, %d replies", i,
                (int)t[i].kind, lived, t[i].replies);
        if (trickler_expects_close(&t[i])) {
            if (lived < 0)
                fail_msg("trickler %d (kind %d) was never closed", i,
                         (int)t[i].kind);
            assert_true(lived + 20 >= (long)FRAME_TIMEOUT_MS);
            assert_true(lived <= (long)FRAME_TIMEOUT_MS + TF_SLACK_MS);
        } else {
            assert_int_equal(t[i].closed_ms, 0);
            assert_true(t[i].replies >= 4);
        }
        close(t[i].fd);
    }
    tf_note("T7: new client served in %ld ms", legit_ms);
    assert_true(legit_ms >= 0 && legit_ms < 1000);
    assert_int_equal(tf_stat(s, TF_STAT(timeouts)), (uint64_t)expect_closed);
    zinx_server_free(s);
}

/* ---- idle timeout ------------------------------------------------------- */

static void t7_idle_timeout(void **state)
{
    (void)state;
    const unsigned idle_ms = 600;
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.idle_timeout_ms = idle_ms;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);

    enum { IDLE = 5, ACTIVE = 2 };
    int idle[IDLE], active[ACTIVE];
    uint64_t t0 = tf_now_ms();
    for (int i = 0; i < IDLE; i++) {
        idle[i] = tc_connect(port);
        assert_true(idle[i] >= 0);
    }
    for (int i = 0; i < ACTIVE; i++) {
        active[i] = tc_connect(port);
        assert_true(active[i] >= 0);
    }
    /* One talks once, at 300 ms, then falls silent. */
    int late = tc_connect(port);
    assert_true(late >= 0);

    uint64_t idle_closed[IDLE] = {0}, late_closed = 0, late_spoke = 0;
    uint64_t end = t0 + 2 * idle_ms + 600;
    while (tf_now_ms() < end) {
        uint64_t now = tf_now_ms();
        for (int i = 0; i < IDLE; i++) {
            if (idle_closed[i] == 0 && tc_peer_closed_now(idle[i]))
                idle_closed[i] = now;
        }
        if (late_spoke == 0 && now - t0 >= 300) {
            assert_int_equal(
                tc_echo_call(late, ZINX_FORMAT_TLV, "once", 4, 1000), 0);
            late_spoke = tf_now_ms();
        }
        if (late_closed == 0 && late_spoke != 0 && tc_peer_closed_now(late))
            late_closed = now;
        for (int i = 0; i < ACTIVE; i++)
            assert_int_equal(
                tc_echo_call(active[i], ZINX_FORMAT_TLV, "hi", 2, 1000), 0);
        tf_sleep_ms(idle_ms / 4);
    }
    for (int i = 0; i < IDLE; i++) {
        long lived = idle_closed[i] ? (long)(idle_closed[i] - t0) : -1;
        tf_note("T7 idle %d closed after %ld ms", i, lived);
        assert_true(lived + 20 >= (long)idle_ms);
        /* Checked every idle_ms/4 here. */
        assert_true(lived <= (long)(idle_ms + idle_ms / 4) + TF_SLACK_MS);
        close(idle[i]);
    }
    long late_lived = late_closed ? (long)(late_closed - late_spoke) : -1;
    tf_note("T7 idle after one message: closed %ld ms after it", late_lived);
    assert_true(late_lived + 20 >= (long)idle_ms);
    assert_true(late_lived <= (long)(idle_ms + idle_ms / 4) + TF_SLACK_MS);
    for (int i = 0; i < ACTIVE; i++) {
        assert_false(tc_peer_closed_now(active[i]));
        close(active[i]);
    }
    close(late);
    assert_int_equal(tf_stat(s, TF_STAT(timeouts)), IDLE + 1);
    zinx_server_free(s);
}

/* The first frame after a long quiet wait of the loop counts from the
   time it arrived, not from when the loop went to sleep: a backend that
   handles completions inside its wait must refresh the loop's clock
   first (io_uring once read it from before the wait, and a client that
   spoke at 400 ms was cut at 600). */
static void t7_idle_clock_after_quiet_wait(void **state)
{
    (void)state;
    const unsigned idle_ms = 600;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.io_threads = 1;
    cfg.idle_timeout_ms = idle_ms;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    tf_sleep_ms(400); /* nothing else wakes the loop meanwhile */
    assert_int_equal(tc_echo_call(fd, ZINX_FORMAT_TLV, "late", 4, 1000), 0);
    tf_sleep_ms(400); /* 800 ms after connecting, 400 after speaking */
    assert_int_equal(tc_echo_call(fd, ZINX_FORMAT_TLV, "alive", 5, 1000), 0);
    close(fd);
    assert_int_equal(tf_stat(s, TF_STAT(timeouts)), 0);
    zinx_server_free(s);
}

/* ---- heartbeat ------------------------------------------------------------
 */

#define HB_INTERVAL_MS 100u

/* Reads heartbeats for ms milliseconds; returns how many arrived, or -1
   if the connection closed or something else arrived. */
static int read_heartbeats(int fd, unsigned ms, uint32_t want_id)
{
    uint64_t end = tf_now_ms() + ms;
    int beats = 0;
    for (;;) {
        int left = tf_ms_left(end);
        if (left == 0)
            return beats;
        uint32_t id, len;
        uint8_t buf[600];
        int rc = tc_recv_frame(fd, ZINX_FORMAT_TLV, &id, buf, sizeof(buf) - 1,
                               &len, left);
        if (rc == -ETIMEDOUT)
            return beats;
        if (rc != 0 || id != want_id)
            return -1;
        buf[len] = '\0';
        if (strncmp((const char *)buf, "heartbeat", 9) != 0)
            return -1;
        beats++;
    }
}

static void t7_receive_only_client_stays(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.heartbeat_interval_ms = HB_INTERVAL_MS;
    cfg.heartbeat_max = 1;
    /* The option for clients that only receive: acknowledgements count. */
    cfg.heartbeat_count_acks = 1;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);

    int fd = tc_connect(port);
    assert_true(fd >= 0);
    /* Three times HeartbeatMax without sending a byte. */
    int beats = read_heartbeats(fd, 3000, cfg.heartbeat_msg_id);
    tf_note("T7 receive-only client: %d heartbeats in 3 s", beats);
    assert_true(beats >= TF_PICK(15, 8));
    assert_int_equal(tf_stat(s, TF_STAT(dead_peers)), 0);
    assert_int_equal(tc_echo_call(fd, ZINX_FORMAT_TLV, "alive", 5, 2000), 0);
    close(fd);
    zinx_server_free(s);
}

/* The not-alive path, with both hooks replaced. */
typedef struct dead_log {
    atomic_int calls;
    atomic_ullong conn_id;
    atomic_ullong at_ms;
} dead_log_t;

static long big_beat(zinx_conn_t *conn, uint8_t *buf, size_t cap, void *udata)
{
    (void)conn;
    (void)udata;
    /* As large as allowed, so a non-reading peer's buffer fills soon. */
    memset(buf, 'x', cap);
    memcpy(buf, "heartbeat", cap < 9 ? cap : 9);
    return (long)cap;
}

static void on_dead(zinx_conn_t *conn, void *udata)
{
    dead_log_t *log = udata;
    if (atomic_fetch_add(&log->calls, 1) == 0) {
        atomic_store(&log->conn_id, zinx_conn_id(conn));
        atomic_store(&log->at_ms, tf_now_ms());
    }
    zinx_conn_close_now(conn);
}

static void on_start_note_id(zinx_conn_t *conn, void *udata)
{
    atomic_ullong *last = udata;
    atomic_store(last, zinx_conn_id(conn));
}

static void t7_frozen_peer_found_not_alive(void **state)
{
    (void)state;
    static dead_log_t log;
    static atomic_ullong last_id;
    atomic_store(&log.calls, 0);
    atomic_store(&last_id, 0);
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.heartbeat_interval_ms = HB_INTERVAL_MS;
    cfg.heartbeat_max = 1;
    /* Acknowledgements count, so only a peer that stopped ACKing (the
       frozen one, its window full) is found not alive. */
    cfg.heartbeat_count_acks = 1;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    assert_int_equal(
        zinx_server_set_heartbeat_hooks(s, big_beat, on_dead, &log), 0);
    assert_int_equal(zinx_server_on_conn_start(s, on_start_note_id, &last_id),
                     0);
    int port = tf_start_or_fail(s);

    /* Sends nothing, reads nothing, tiny receive buffer. */
    tc_opts_t o = {.rcvbuf = 1024};
    int frozen = tc_connect_opts(port, &o);
    assert_true(frozen >= 0);
    uint64_t t0 = tf_now_ms();
    while (atomic_load(&last_id) == 0 && tf_now_ms() < t0 + 2000)
        tf_sleep_ms(1);
    uint64_t frozen_id = atomic_load(&last_id);
    assert_true(frozen_id != 0);

    /* A receive-only reader alongside must stay alive throughout. */
    int reader = tc_connect(port);
    assert_true(reader >= 0);
    bystander_t *bystander = bystander_start(port);

    uint64_t end = t0 + 20000;
    int beats = 0;
    while (atomic_load(&log.calls) == 0 && tf_now_ms() < end) {
        int b = read_heartbeats(reader, 100, cfg.heartbeat_msg_id);
        assert_true(b >= 0);
        beats += b;
    }
    long found_ms =
        atomic_load(&log.calls) ? (long)(atomic_load(&log.at_ms) - t0) : -1;
    tf_note("T7 frozen peer found not alive after %ld ms (reader got %d "
            "beats)",
            found_ms, beats);
    assert_true(found_ms >= 1000); /* never before HeartbeatMax */
    assert_int_equal(atomic_load(&log.calls), 1);
    assert_int_equal(atomic_load(&log.conn_id), frozen_id);
    assert_int_equal(tf_stat(s, TF_STAT(dead_peers)), 1);
    /* The hook closed it. */
    size_t junk;
    int rc = tc_wait_closed(frozen, 5000, &junk);
    assert_true(rc == 0 || rc == -ECONNRESET);
    close(frozen);
    assert_int_equal(tc_echo_call(reader, ZINX_FORMAT_TLV, "alive", 5, 2000) ==
                             0 ||
                         read_heartbeats(reader, 300, cfg.heartbeat_msg_id) > 0,
                     1);
    bystander_finish(bystander, "T7 heartbeat", TF_PICK(1000, 3000));
    close(reader);
    zinx_server_free(s);
}

/*
 * Zinx's rule, the default: a peer must send something within
 * HeartbeatMax. One that only lets its kernel acknowledge our heartbeats
 * is cut when HeartbeatMax has passed since its last byte (not at the
 * next beat), while one that answers keeps its connection.
 */
static void t26_silent_peer_cut_at_heartbeat_max(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.heartbeat_interval_ms = 700; /* beats do not line up with the cut */
    cfg.heartbeat_max = 1;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);

    int silent = tc_connect(port);
    int talker = tc_connect(port);
    assert_true(silent >= 0 && talker >= 0);
    uint64_t t0 = tf_now_ms();
    /* The talker sends a heartbeat back every 300 ms; the silent one only
       reads, so its kernel ACKs everything. */
    int rc = -ETIMEDOUT;
    uint64_t cut_ms = 0;
    while (tf_now_ms() < t0 + 3000) {
        assert_int_equal(tc_send_frame(talker, ZINX_FORMAT_TLV,
                                       cfg.heartbeat_msg_id, "hb", 2, 1000),
                         0);
        size_t junk;
        rc = tc_wait_closed(silent, 300, &junk);
        if (rc != -ETIMEDOUT) {
            cut_ms = tf_now_ms() - t0;
            break;
        }
    }
    tf_note("T26 silent peer cut after %llu ms (HeartbeatMax 1 s)",
            (unsigned long long)cut_ms);
    assert_true(rc == 0 || rc == -ECONNRESET);
    assert_true(cut_ms >= 950);
    assert_true(cut_ms <= 1000u + TF_SLACK_MS);
    assert_int_equal(tf_stat(s, TF_STAT(dead_peers)), 1);
    assert_false(tc_peer_closed_now(talker)); /* it answered: still open */
    close(silent);
    close(talker);
    zinx_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t7_frame_deadline),
        cmocka_unit_test(t7_idle_timeout),
        cmocka_unit_test(t7_idle_clock_after_quiet_wait),
        cmocka_unit_test(t7_receive_only_client_stays),
        cmocka_unit_test(t7_frozen_peer_found_not_alive),
        cmocka_unit_test(t26_silent_peer_cut_at_heartbeat_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
