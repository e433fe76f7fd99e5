/*
 * The cluster over NATS (zinx/cluster.h), against a real nats-server
 * started by each test: notify and broadcast across nodes with real TCP
 * clients on both, their order, publish/subscribe, a node killed with
 * SIGKILL (a child process), a graceful goodbye, node number clashes at
 * start and later, a nats-server restart, a slow consumer, and every
 * error of the API.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <nats/nats.h>

#include "cluster/wire.h"
#include "test_client.h"
#include "test_fixture.h"
#include "test_nats.h"
#include "test_probe.h"
#include "zinx.h"
#include "zinx/cluster.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 5000
#define MSG_NOTE 7u
#define MSG_ALL 8u

static tn_server_t nats;
static char self_exe[512];

static int teardown(void **state)
{
    (void)state;
    tn_stop(&nats);
    memset(&nats, 0, sizeof(nats));
    return 0;
}

/* ---- a node under test ------------------------------------------------- */

#define MAX_SEEN 64

typedef struct node {
    zinx_server_t *s;
    int port;
    pthread_mutex_t lock;
    uint64_t remote[MAX_SEEN]; /* remote connections known now */
    int nremote;
    uint32_t up[MAX_SEEN], down[MAX_SEEN]; /* node hook calls */
    int nup, ndown;
    uint64_t down_ms;                 /* when the last node went down */
    atomic_uint_least64_t last_local; /* the last local connection */
    /* topic "chat": numbered messages */
    atomic_int got, bad;
    atomic_uint from;
    atomic_int hold; /* "flood": the subscriber blocks while set */
    atomic_int flooded;
} node_t;

static void on_node(zinx_server_t *s, uint32_t node, int up, void *udata)
{
    node_t *n = udata;
    (void)s;
    pthread_mutex_lock(&n->lock);
    if (up && n->nup < MAX_SEEN)
        n->up[n->nup++] = node;
    if (!up && n->ndown < MAX_SEEN) {
        n->down[n->ndown++] = node;
        n->down_ms = tf_now_ms();
    }
    pthread_mutex_unlock(&n->lock);
}

static void on_remote(zinx_server_t *s, uint64_t id, int up, void *udata)
{
    node_t *n = udata;
    (void)s;
    pthread_mutex_lock(&n->lock);
    if (up && n->nremote < MAX_SEEN) {
        n->remote[n->nremote++] = id;
    } else if (!up) {
        for (int i = 0; i < n->nremote; i++)
            if (n->remote[i] == id)
                n->remote[i] = n->remote[--n->nremote];
    }
    pthread_mutex_unlock(&n->lock);
}

static void on_start(zinx_conn_t *c, void *udata)
{
    node_t *n = udata;
    atomic_store(&n->last_local, zinx_conn_id(c));
}

static void on_chat(zinx_server_t *s, uint32_t from, const void *data,
                    size_t len, void *udata)
{
    node_t *n = udata;
    (void)s;
    uint32_t i;
    if (len != sizeof(i)) {
        atomic_fetch_add(&n->bad, 1);
        return;
    }
    memcpy(&i, data, sizeof(i));
    if ((int)i != atomic_load(&n->got))
        atomic_fetch_add(&n->bad, 1);
    atomic_fetch_add(&n->got, 1);
    atomic_store(&n->from, from);
}

static void on_flood(zinx_server_t *s, uint32_t from, const void *data,
                     size_t len, void *udata)
{
    node_t *n = udata;
    (void)s;
    (void)from;
    (void)data;
    (void)len;
    while (atomic_load(&n->hold))
        tf_sleep_ms(5);
    atomic_fetch_add(&n->flooded, 1);
}

static void cluster_config(zinx_config_t *cfg, uint32_t number, uint32_t hb_ms,
                           uint32_t dead_after)
{
    tf_config(cfg);
    snprintf(cfg->cluster_name, sizeof(cfg->cluster_name), "zt%d",
             (int)getpid());
    snprintf(cfg->cluster_nats_url, sizeof(cfg->cluster_nats_url), "%s",
             nats.url);
    cfg->cluster_node = number;
    cfg->cluster_heartbeat_ms = hb_ms;
    cfg->cluster_dead_after = dead_after;
}

static zinx_server_t *node_new(node_t *n, const zinx_config_t *cfg)
{
    memset(n, 0, sizeof(*n));
    pthread_mutex_init(&n->lock, NULL);
    n->s = tf_echo_server_new(cfg);
    assert_int_equal(zinx_cluster_on_node(n->s, on_node, n), 0);
    assert_int_equal(zinx_cluster_on_remote_conn(n->s, on_remote, n), 0);
    assert_int_equal(zinx_server_on_conn_start(n->s, on_start, n), 0);
    assert_int_equal(zinx_cluster_subscribe(n->s, "chat", on_chat, n), 0);
    assert_int_equal(zinx_cluster_subscribe(n->s, "flood", on_flood, n), 0);
    return n->s;
}

static void node_start(node_t *n, uint32_t number, uint32_t hb_ms,
                       uint32_t dead_after)
{
    zinx_config_t cfg;
    cluster_config(&cfg, number, hb_ms, dead_after);
    node_new(n, &cfg);
    n->port = tf_start_or_fail(n->s);
    assert_int_equal(zinx_cluster_node(n->s), number);
}

static void node_free(node_t *n)
{
    zinx_server_free(n->s);
    n->s = NULL;
    pthread_mutex_destroy(&n->lock);
}

typedef struct sees {
    node_t *n;
    uint32_t node;
    uint64_t conn;
} sees_t;

static int pred_sees_node(void *arg)
{
    sees_t *w = arg;
    uint32_t nodes[8];
    size_t k = zinx_cluster_nodes(w->n->s, nodes, 8);
    for (size_t i = 0; i < k && i < 8; i++)
        if (nodes[i] == w->node)
            return 1;
    return 0;
}

static int pred_knows_conn(void *arg)
{
    sees_t *w = arg;
    pthread_mutex_lock(&w->n->lock);
    int found = 0;
    for (int i = 0; i < w->n->nremote; i++)
        found |= w->n->remote[i] == w->conn;
    pthread_mutex_unlock(&w->n->lock);
    return found;
}

static int pred_lost_conn(void *arg)
{
    return !pred_knows_conn(arg);
}

static int pred_node_down(void *arg)
{
    sees_t *w = arg;
    pthread_mutex_lock(&w->n->lock);
    int found = 0;
    for (int i = 0; i < w->n->ndown; i++)
        found |= w->n->down[i] == w->node;
    pthread_mutex_unlock(&w->n->lock);
    return found;
}

static void wait_sees(node_t *n, uint32_t node)
{
    sees_t w = {.n = n, .node = node};
    if (!tf_wait_until(pred_sees_node, &w, tf_ms(5000)))
        fail_msg("node %u never saw node %u", zinx_cluster_node(n->s), node);
}

static void wait_knows(node_t *n, uint64_t conn)
{
    sees_t w = {.n = n, .conn = conn};
    if (!tf_wait_until(pred_knows_conn, &w, tf_ms(5000)))
        fail_msg("node %u never learnt of connection %016llx",
                 zinx_cluster_node(n->s), (unsigned long long)conn);
}

/* A client on n, after the hook told its ID. */
static int client_on(node_t *n, uint64_t *id)
{
    atomic_store(&n->last_local, 0);
    int fd = tc_connect(n->port);
    assert_true(fd >= 0);
    assert_int_equal(tc_echo_call(fd, TLV, "hi", 2, tf_ms(T_IO)), 0);
    *id = atomic_load(&n->last_local);
    assert_true(*id != 0);
    return fd;
}

static void expect_frame(int fd, uint32_t want_id, const void *want,
                         uint32_t want_len)
{
    uint32_t id = 0, len = 0;
    char buf[256];
    assert_int_equal(
        tc_recv_frame(fd, TLV, &id, buf, sizeof(buf), &len, tf_ms(T_IO)), 0);
    assert_int_equal(id, want_id);
    assert_int_equal(len, want_len);
    assert_memory_equal(buf, want, want_len);
}

static zinx_cluster_stats_t stats_of(const node_t *n)
{
    zinx_cluster_stats_t st = {.struct_size = sizeof(st)};
    assert_int_equal(zinx_cluster_stats(n->s, &st), 0);
    return st;
}

/* ---- the API's errors --------------------------------------------------- */

static void test_api_errors(void **state)
{
    (void)state;
    zinx_cluster_stats_t st = {.struct_size = sizeof(st)};
    assert_int_equal(zinx_cluster_stats(NULL, &st), ZINX_EINVAL);
    assert_int_equal(zinx_cluster_node(NULL), 0);
    assert_int_equal(zinx_cluster_nodes(NULL, NULL, 0), 0);
    assert_int_equal(zinx_cluster_on_node(NULL, on_node, NULL), ZINX_EINVAL);
    assert_int_equal(zinx_cluster_on_remote_conn(NULL, on_remote, NULL),
                     ZINX_EINVAL);
    assert_int_equal(zinx_cluster_subscribe(NULL, "t", on_chat, NULL),
                     ZINX_EINVAL);
    assert_int_equal(zinx_cluster_publish(NULL, "t", "x", 1), ZINX_EINVAL);

    zinx_config_t cfg;
    tf_config(&cfg);
    zinx_server_t *s = tf_echo_server_new(&cfg);
    assert_int_equal(zinx_cluster_stats(s, NULL), ZINX_EINVAL);
    zinx_cluster_stats_t tiny = {.struct_size = 4};
    assert_int_equal(zinx_cluster_stats(s, &tiny), ZINX_EINVAL);
    char long_topic[ZINX_CLUSTER_TOPIC_MAX + 2];
    memset(long_topic, 'a', sizeof(long_topic) - 1);
    long_topic[sizeof(long_topic) - 1] = '\0';
    const char *bad[] = {"", "a.b", "a b", "a*", ">", long_topic};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(zinx_cluster_subscribe(s, bad[i], on_chat, NULL),
                         ZINX_EINVAL);
        assert_int_equal(zinx_cluster_publish(s, bad[i], "x", 1), ZINX_EINVAL);
    }
    long_topic[ZINX_CLUSTER_TOPIC_MAX] = '\0'; /* the longest allowed */
    assert_int_equal(zinx_cluster_subscribe(s, long_topic, on_chat, NULL), 0);
    assert_int_equal(zinx_cluster_subscribe(s, NULL, on_chat, NULL),
                     ZINX_EINVAL);
    assert_int_equal(zinx_cluster_subscribe(s, "t", NULL, NULL), ZINX_EINVAL);
    assert_int_equal(zinx_cluster_subscribe(s, "t", on_chat, NULL), 0);
    assert_int_equal(zinx_cluster_subscribe(s, "t", on_chat, NULL),
                     ZINX_EEXIST);
    assert_int_equal(zinx_cluster_publish(s, "t", NULL, 1), ZINX_EINVAL);
    assert_int_equal(zinx_cluster_publish(s, "t", "x", 1), ZINX_ESTATE);

    /* Without ClusterName: a server like before, IDs without a node. */
    tf_start_or_fail(s);
    memset(&st, 0xff, sizeof(st));
    st.struct_size = sizeof(st);
    assert_int_equal(zinx_cluster_stats(s, &st), 0);
    assert_int_equal(st.struct_size, sizeof(st));
    assert_int_equal(st.node, 0);
    assert_int_equal(st.msgs_sent, 0);
    assert_int_equal(st.member, 0);
    assert_int_equal(zinx_cluster_node(s), 0);
    assert_int_equal(zinx_cluster_publish(s, "t", "x", 1), ZINX_ESTATE);
    assert_int_equal(zinx_cluster_on_node(s, on_node, NULL), ZINX_ESTATE);
    assert_int_equal(zinx_cluster_on_remote_conn(s, on_remote, NULL),
                     ZINX_ESTATE);
    assert_int_equal(zinx_cluster_subscribe(s, "u", on_chat, NULL),
                     ZINX_ESTATE);
    int fd = tc_connect(zinx_server_port(s));
    assert_true(fd >= 0);
    assert_int_equal(tc_echo_call(fd, TLV, "x", 1, tf_ms(T_IO)), 0);
    tc_close(fd);
    zinx_server_free(s);

    /* No NATS where ClusterNatsUrl points: the start fails. */
    cluster_config(&cfg, 1, 100, 3);
    snprintf(cfg.cluster_nats_url, sizeof(cfg.cluster_nats_url),
             "nats://127.0.0.1:1");
    s = tf_echo_server_new(&cfg);
    assert_int_equal(zinx_server_start(s), ZINX_ECLOSED);
    zinx_server_free(s);
}

/* ---- across nodes ----------------------------------------------------------
 */

typedef struct sender {
    node_t *from;
    uint64_t to;
    int count;
} sender_t;

/* Numbered messages to one remote connection, notify and broadcast
   mixed, from one thread. */
static void *send_numbered(void *arg)
{
    sender_t *w = arg;
    for (int i = 0; i < w->count; i++) {
        uint32_t v = (uint32_t)i;
        int rc = i % 3 == 0 ? zinx_server_broadcast(w->from->s, MSG_ALL, &v, 4)
                            : zinx_server_notify(w->from->s, &w->to, 1,
                                                 MSG_NOTE, &v, 4);
        if (rc < 1)
            return (void *)(intptr_t)rc;
    }
    return NULL;
}

/* The cluster's counters reach the metrics text (src/metrics/collect.c):
   heartbeats go on meanwhile, so the exported count lies between a read
   of zinx_cluster_stats() before and one after. */
static void check_cluster_metrics(zinx_server_t *s,
                                  const zinx_cluster_stats_t *before)
{
    char *text = malloc(1 << 16);
    assert_non_null(text);
    long n = zinx_server_metrics_text(s, text, 1 << 16);
    assert_true(n > 0 && n < (1 << 16));
    zinx_cluster_stats_t after = {.struct_size = sizeof(after)};
    assert_int_equal(zinx_cluster_stats(s, &after), 0);
    const char *row = strstr(text, "\nzinx_cluster_msgs_sent_total ");
    assert_non_null(row);
    unsigned long long sent = strtoull(strchr(row + 1, ' ') + 1, NULL, 10);
    assert_true(sent >= before->msgs_sent && sent <= after.msgs_sent);
    assert_non_null(strstr(text, "\nzinx_cluster_node 1\n"));
    assert_non_null(strstr(text, "\nzinx_cluster_nodes_alive 1\n"));
    assert_non_null(strstr(text, "\nzinx_cluster_connected 1\n"));
    assert_non_null(
        strstr(text, "# TYPE zinx_cluster_dropped_total counter\n"));
    free(text);
}

static void test_cross_node(void **state)
{
    (void)state;
    tn_start(&nats);
    node_t a, b;
    node_start(&a, 1, 100, 5);
    node_start(&b, 2, 100, 5);
    wait_sees(&a, 2);
    wait_sees(&b, 1);

    uint64_t ida, idb;
    int fa = client_on(&a, &ida);
    int fb = client_on(&b, &idb);
    assert_int_equal(zinx_cluster_node_of(ida), 1);
    assert_int_equal(zinx_cluster_node_of(idb), 2);
    wait_knows(&a, idb);
    wait_knows(&b, ida);

    /* Notify from A to a connection on each node. */
    uint64_t both[2] = {idb, ida};
    assert_int_equal(zinx_server_notify(a.s, both, 2, MSG_NOTE, "note", 4), 2);
    expect_frame(fa, MSG_NOTE, "note", 4);
    expect_frame(fb, MSG_NOTE, "note", 4);
    /* Broadcast from B: its own connection and one node. */
    assert_int_equal(zinx_server_broadcast(b.s, MSG_ALL, "all", 3), 2);
    expect_frame(fa, MSG_ALL, "all", 3);
    expect_frame(fb, MSG_ALL, "all", 3);

    /* Order: numbered messages from one thread of A reach B's client
       in the order sent, notify and broadcast mixed. */
    int count = TF_PICK(3000, 600);
    sender_t w = {.from = &a, .to = idb, .count = count};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, send_numbered, &w), 0);
    for (int i = 0; i < count; i++) {
        uint32_t id = 0, len = 0, v = 0;
        assert_int_equal(
            tc_recv_frame(fb, TLV, &id, &v, sizeof(v), &len, tf_ms(T_IO)), 0);
        if (v != (uint32_t)i)
            fail_msg("message %d arrived as number %u", i, v);
        assert_int_equal(id, i % 3 == 0 ? MSG_ALL : MSG_NOTE);
    }
    void *ret;
    assert_int_equal(tf_join(t, tf_ms(T_IO), &ret), 0);
    assert_null(ret);
    zinx_cluster_stats_t sa = stats_of(&a), sb = stats_of(&b);
    assert_true(sa.msgs_sent >= (uint64_t)count);
    assert_true(sb.delivered >= (uint64_t)count);
    assert_int_equal(sa.nodes_alive, 1);
    assert_int_equal(sa.remote_conns, 1);
    assert_int_equal(sa.connected, 1);
    assert_int_equal(sa.member, 1);
    assert_int_equal(sa.node, 1);
    check_cluster_metrics(a.s, &sa);

    /* A connection that ends is reported gone on the other node. */
    tc_close(fb);
    sees_t gone = {.n = &a, .conn = idb};
    assert_true(tf_wait_until(pred_lost_conn, &gone, tf_ms(5000)));

    /* A graceful stop says goodbye: sooner than the heartbeats tell. */
    fb = client_on(&b, &idb);
    wait_knows(&a, idb);
    uint64_t t0 = tf_now_ms();
    node_free(&b);
    sees_t down = {.n = &a, .node = 2, .conn = idb};
    assert_true(tf_wait_until(pred_node_down, &down, tf_ms(5000)));
    assert_true(tf_wait_until(pred_lost_conn, &down, tf_ms(5000)));
    uint64_t took = a.down_ms - t0;
    tf_note("goodbye noticed in %llu ms", (unsigned long long)took);
    assert_true(took < 500); /* dead after 5 x 100 ms otherwise */
    tc_close(fb);
    tc_close(fa);
    node_free(&a);
    tn_stop(&nats);
}

static void test_publish_subscribe(void **state)
{
    (void)state;
    tn_start(&nats);
    node_t a, b;
    node_start(&a, 1, 100, 5);
    node_start(&b, 2, 100, 5);
    wait_sees(&b, 1);
    int count = TF_PICK(2000, 400);
    for (int i = 0; i < count; i++) {
        uint32_t v = (uint32_t)i;
        assert_int_equal(zinx_cluster_publish(b.s, "chat", &v, 4), 0);
    }
    assert_true(tf_wait_atomic_ge(&a.got, count, tf_ms(T_IO)));
    assert_int_equal(atomic_load(&a.bad), 0);
    assert_int_equal(atomic_load(&a.from), 2);
    /* Not to the publisher itself. */
    assert_int_equal(atomic_load(&b.got), 0);
    /* Above NATS's max payload (1 MiB by default). */
    size_t big = 2u << 20;
    void *buf = calloc(1, big);
    assert_int_equal(zinx_cluster_publish(b.s, "chat", buf, big),
                     ZINX_EMSGSIZE);
    free(buf);
    node_free(&b);
    node_free(&a);
    tn_stop(&nats);
}

/* ---- node numbers ---------------------------------------------------------
 */

static void test_clash_at_start(void **state)
{
    (void)state;
    tn_start(&nats);
    node_t a;
    node_start(&a, 7, 100, 5);
    zinx_config_t cfg;
    cluster_config(&cfg, 7, 100, 5);
    zinx_server_t *s = tf_echo_server_new(&cfg);
    assert_int_equal(zinx_server_start(s), ZINX_EEXIST);
    zinx_server_free(s);
    zinx_cluster_stats_t st = stats_of(&a);
    assert_int_equal(st.member, 1);
    assert_int_equal(st.clashes, 0);
    /* Once it is gone, the number is free again. */
    node_free(&a);
    s = tf_echo_server_new(&cfg);
    tf_start_or_fail(s);
    assert_int_equal(zinx_cluster_node(s), 7);
    zinx_server_free(s);
    tn_stop(&nats);
}

/* A heartbeat of another start of node `number`, published with libnats
   itself: what a node from the other side of a partition sends. */
static void fake_heartbeat(uint32_t number, uint64_t start_ms)
{
    natsConnection *nc = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, nats.url), NATS_OK);
    uint8_t buf[ZINX__WIRE_HEADER];
    zinx__wire_msg_t m = {.kind = ZINX__WIRE_HEARTBEAT,
                          .node = number,
                          .instance = 0x1234567890abcdefull,
                          .value = start_ms};
    zinx__wire_put_header(buf, &m);
    char subj[96];
    snprintf(subj, sizeof(subj), "zinx.zt%d.all", (int)getpid());
    assert_int_equal(natsConnection_Publish(nc, subj, buf, sizeof(buf)),
                     NATS_OK);
    /* And garbage: ignored, not a crash. */
    assert_int_equal(natsConnection_Publish(nc, subj, "junk", 4), NATS_OK);
    assert_int_equal(natsConnection_Flush(nc), NATS_OK);
    natsConnection_Destroy(nc);
}

static int pred_clashed(void *arg)
{
    return stats_of(arg).clashes >= 1;
}

/* Counted, and this node out of the cluster: the two are separate
   counters, so wait for both. */
static int pred_clashed_and_left(void *arg)
{
    zinx_cluster_stats_t st = stats_of(arg);
    return st.clashes >= 1 && st.member == 0;
}

static void test_clash_later(void **state)
{
    (void)state;
    tn_start(&nats);
    node_t a;
    node_start(&a, 9, 100, 5);
    /* The other started later: it should leave, this node stays. */
    fake_heartbeat(9, UINT64_C(1) << 62);
    assert_true(tf_wait_until(pred_clashed, &a, tf_ms(5000)));
    assert_int_equal(stats_of(&a).member, 1);
    node_free(&a);

    /* The other started earlier (at the epoch): this node leaves the
       cluster and goes on serving its own connections. */
    node_start(&a, 9, 100, 5);
    fake_heartbeat(9, 1);
    assert_true(tf_wait_until(pred_clashed_and_left, &a, tf_ms(5000)));
    zinx_cluster_stats_t st = stats_of(&a);
    assert_int_equal(st.member, 0);
    assert_int_equal(st.clashes, 1);
    assert_int_equal(zinx_cluster_publish(a.s, "chat", "x", 1), ZINX_ESTATE);
    uint64_t id;
    int fd = client_on(&a, &id);
    assert_int_equal(zinx_server_notify(a.s, &id, 1, MSG_NOTE, "n", 1), 1);
    expect_frame(fd, MSG_NOTE, "n", 1);
    tc_close(fd);
    node_free(&a);
    tn_stop(&nats);
}

/* ---- failures -------------------------------------------------------------
 */

/* The child of test_node_death: node 3 with one client of its own,
   until killed. */
static int child_main(const char *url)
{
    snprintf(nats.url, sizeof(nats.url), "%s", url);
    zinx_config_t cfg;
    cluster_config(&cfg, 3, 100, 3);
    snprintf(cfg.cluster_name, sizeof(cfg.cluster_name), "zt%d",
             (int)getppid());
    zinx_server_t *s = zinx_server_new(&cfg);
    if (s == NULL || zinx_server_set_log_sink(s, tf_log_sink, NULL) != 0 ||
        zinx_server_start(s) != 0)
        return 1;
    int fd = tc_connect(zinx_server_port(s));
    if (fd < 0)
        return 1;
    for (;;)
        pause();
}

static int pred_knows_node3_conn(void *arg)
{
    node_t *n = arg;
    pthread_mutex_lock(&n->lock);
    int found = 0;
    for (int i = 0; i < n->nremote; i++)
        found |= zinx_cluster_node_of(n->remote[i]) == 3;
    pthread_mutex_unlock(&n->lock);
    return found;
}

static int pred_no_node3_conn(void *arg)
{
    return !pred_knows_node3_conn(arg);
}

static void test_node_death(void **state)
{
    (void)state;
    tn_start(&nats);
    node_t a;
    node_start(&a, 1, 100, 3);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(self_exe, self_exe, "--child", nats.url, (char *)NULL);
        _exit(127);
    }
    wait_sees(&a, 3);
    if (!tf_wait_until(pred_knows_node3_conn, &a, tf_ms(5000))) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("node 3's connection never showed");
    }
    uint64_t t0 = tf_now_ms();
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    sees_t down = {.n = &a, .node = 3};
    assert_true(tf_wait_until(pred_node_down, &down, tf_ms(5000)));
    assert_true(tf_wait_until(pred_no_node3_conn, &a, tf_ms(5000)));
    uint64_t took = tf_now_ms() - t0;
    tf_note("node death noticed in %llu ms", (unsigned long long)took);
    /* Dead after 3 x 100 ms, the check's pace (25 ms), and slack. */
    assert_true(took <= 300 + 25 + (uint64_t)TF_SLACK_MS);
    zinx_cluster_stats_t st = stats_of(&a);
    assert_int_equal(st.nodes_down, 1);
    assert_int_equal(st.remote_conns, 0);
    assert_int_equal(st.nodes_alive, 0);
    node_free(&a);
    tn_stop(&nats);
}

static int pred_disconnected(void *arg)
{
    return !stats_of(arg).connected;
}

static int pred_reconnected(void *arg)
{
    zinx_cluster_stats_t st = stats_of(arg);
    return st.reconnects >= 1 && st.connected;
}

static void test_nats_restart(void **state)
{
    (void)state;
    tn_start(&nats);
    node_t a, b;
    node_start(&a, 1, 100, 20);
    node_start(&b, 2, 100, 20);
    wait_sees(&a, 2);
    uint64_t idb;
    int fb = client_on(&b, &idb);
    wait_knows(&a, idb);
    assert_int_equal(zinx_server_notify(a.s, &idb, 1, MSG_NOTE, "1", 1), 1);
    expect_frame(fb, MSG_NOTE, "1", 1);

    tn_kill(&nats);
    /* While NATS is away a publish says so. */
    assert_true(tf_wait_until(pred_disconnected, &a, tf_ms(5000)));
    assert_int_equal(zinx_cluster_publish(a.s, "chat", "x", 1), ZINX_ECLOSED);
    tn_start(&nats); /* the same port */
    assert_true(tf_wait_until(pred_reconnected, &a, tf_ms(10000)));
    assert_true(tf_wait_until(pred_reconnected, &b, tf_ms(10000)));
    /* Traffic resumes once the subscriptions are back on the server. */
    int delivered = 0;
    for (int i = 0; i < 100 && !delivered; i++) {
        zinx_server_notify(a.s, &idb, 1, MSG_NOTE, "2", 1);
        uint32_t id = 0, len = 0;
        char c = 0;
        delivered = tc_recv_frame(fb, TLV, &id, &c, 1, &len, 100) == 0 &&
                    id == MSG_NOTE && c == '2';
    }
    assert_true(delivered);
    tc_close(fb);
    node_free(&b);
    node_free(&a);
    tn_stop(&nats);
}

/* ---- back-pressure ----------------------------------------------------------
 */

static int pred_dropped(void *arg)
{
    zinx_cluster_stats_t st = stats_of(arg);
    return st.dropped > 0 && st.slow_consumer > 0;
}

static void test_slow_consumer(void **state)
{
    (void)state;
    tn_start(&nats);
    node_t a, b;
    zinx_config_t cfg;
    /* Long enough liveness that the held thread's missing heartbeats do
       not count: this test is about memory, not death. */
    cluster_config(&cfg, 1, 100, 100);
    cfg.cluster_max_pending = 1u << 20;
    node_new(&a, &cfg);
    a.port = tf_start_or_fail(a.s);
    node_start(&b, 2, 100, 100);
    wait_sees(&b, 1);
    uint64_t idb;
    int fb = client_on(&b, &idb);

    atomic_store(&a.hold, 1);
    /* One message in to hold the cluster thread, then the flood. */
    assert_int_equal(zinx_cluster_publish(b.s, "flood", "x", 1), 0);
    long rss0 = probe_rss_kib();
    size_t size = 32u << 10;
    int count = TF_PICK(4000, 1500); /* 128 MiB (48 under sanitizers) */
    char *chunk = calloc(1, size);
    int refused = 0;
    for (int i = 0; i < count; i++) {
        if (zinx_cluster_publish(b.s, "flood", chunk, size) != 0)
            refused++;
        /* B serves its clients all along. */
        if (i % 500 == 0)
            assert_int_equal(tc_echo_call(fb, TLV, "b", 1, tf_ms(T_IO)), 0);
    }
    free(chunk);
    assert_true(tf_wait_until(pred_dropped, &a, tf_ms(10000)));
    tf_sleep_ms(200);
    long grown = probe_rss_kib() - rss0;
    zinx_cluster_stats_t sa = stats_of(&a);
    zinx_cluster_stats_t sb = stats_of(&b);
    tf_note("flood: %d x %zu bytes, %d refused (B: %llu reconnects); A "
            "dropped %llu, %llu slow-consumer signals, %llu reconnects, RSS "
            "+%ld KiB",
            count, size, refused, (unsigned long long)sb.reconnects,
            (unsigned long long)sa.dropped,
            (unsigned long long)sa.slow_consumer,
            (unsigned long long)sa.reconnects, grown);
    if (!TF_SANITIZED)
        assert_true(grown < 48 * 1024);
    assert_true(sa.pending_bytes <= cfg.cluster_max_pending + 3 * size);
    assert_int_equal(tc_echo_call(fb, TLV, "b", 1, tf_ms(T_IO)), 0);
    sb = stats_of(&b);
    assert_int_equal(refused, 0);
    assert_int_equal(sb.reconnects, 0);
    assert_int_equal(sb.dropped, 0);
    assert_int_equal(sb.member, 1);

    /* Let go: A reads again. */
    atomic_store(&a.hold, 0);
    uint32_t zero = 0;
    assert_int_equal(zinx_cluster_publish(b.s, "chat", &zero, 4), 0);
    assert_true(tf_wait_atomic_ge(&a.got, 1, tf_ms(T_IO)));
    tc_close(fb);
    node_free(&b);
    node_free(&a);
    tn_stop(&nats);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2]);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n > 0)
        self_exe[n] = '\0';
    signal(SIGPIPE, SIG_IGN);
    /* One test by name, when debugging: TEST_CLUSTER_ONLY=test_... */
    if (getenv("TEST_CLUSTER_ONLY") != NULL)
        cmocka_set_test_filter(getenv("TEST_CLUSTER_ONLY"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_api_errors, teardown),
        cmocka_unit_test_teardown(test_cross_node, teardown),
        cmocka_unit_test_teardown(test_publish_subscribe, teardown),
        cmocka_unit_test_teardown(test_clash_at_start, teardown),
        cmocka_unit_test_teardown(test_clash_later, teardown),
        cmocka_unit_test_teardown(test_node_death, teardown),
        cmocka_unit_test_teardown(test_nats_restart, teardown),
        cmocka_unit_test_teardown(test_slow_consumer, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
