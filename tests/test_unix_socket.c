/*
 * Unix domain sockets end to end: a server on "unix:PATH" (file mode,
 * addresses, stale and live files, removal at stop), raw clients, the
 * endpoint's dialer and the blocking client over it, and a connection
 * adopted from a socketpair descriptor.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_client.h"
#include "test_fixture.h"
#include "zinx.h"

typedef struct unix_env {
    char dir[32];
    char path[48];
    char host[ZINX_CONFIG_HOST_MAX];
} unix_env_t;

static int setup(void **state)
{
    unix_env_t *e = calloc(1, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/zinx-unix-XXXXXX");
    if (mkdtemp(e->dir) == NULL)
        return -1;
    snprintf(e->path, sizeof(e->path), "%s/s.sock", e->dir);
    snprintf(e->host, sizeof(e->host), "unix:%s", e->path);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    unix_env_t *e = *state;
    unlink(e->path);
    rmdir(e->dir);
    free(e);
    return 0;
}

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&un, sizeof(un)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static tf_server_t *unix_server(const unix_env_t *e, uint32_t mode,
                                uint32_t workers)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    snprintf(cfg.host, sizeof(cfg.host), "%s", e->host);
    cfg.unix_mode = mode;
    cfg.worker_pool_size = workers;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t echo = {.handle = tf_echo};
    assert_int_equal(zinx_server_set_fallback_router(ts->srv, &echo), 0);
    return ts;
}

/* Written by the worker, read by the test. The lock is what orders the
   two: the reply's send()/recv() pair used to (TSan counts socket calls
   as synchronisation), but on io_uring the kernel sends the reply and
   TSan sees no call. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char seen_local[128], seen_remote[128];

static void note_addrs(zinx_conn_t *c, void *udata)
{
    (void)udata;
    pthread_mutex_lock(&seen_lock);
    snprintf(seen_local, sizeof(seen_local), "%s", zinx_conn_local_addr(c));
    snprintf(seen_remote, sizeof(seen_remote), "%s", zinx_conn_remote_addr(c));
    pthread_mutex_unlock(&seen_lock);
}

static void echo_once(int fd)
{
    uint32_t id = 0;
    char buf[16];
    uint32_t len = 0;
    assert_int_equal(tc_send_frame(fd, ZINX_FORMAT_TLV, 7, "hello", 5, 2000),
                     0);
    assert_int_equal(
        tc_recv_frame(fd, ZINX_FORMAT_TLV, &id, buf, sizeof(buf), &len, 2000),
        0);
    assert_int_equal(id, 7);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "hello", 5);
}

static void test_server_file_mode_addrs_and_removal(void **state)
{
    unix_env_t *e = *state;
    tf_server_t *ts = unix_server(e, 0600, 2);
    zinx_server_on_conn_start(ts->srv, note_addrs, NULL);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    struct stat st;
    assert_int_equal(stat(e->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_string_equal(zinx_server_listen_host(ts->srv), e->host);
    assert_int_equal(zinx_server_port(ts->srv), 0);

    int fd = unix_connect(e->path);
    assert_true(fd >= 0);
    echo_once(fd);
    pthread_mutex_lock(&seen_lock);
    char local[128], remote[128];
    memcpy(local, seen_local, sizeof(local));
    memcpy(remote, seen_remote, sizeof(remote));
    pthread_mutex_unlock(&seen_lock);
    assert_string_equal(local, e->path);
    assert_string_equal(remote, e->path); /* the client is unnamed */
    close(fd);

    TF_ASSERT_RC(tf_stop_wait(ts->srv, 10000), 0);
    assert_int_equal(stat(e->path, &st), -1); /* removed at stop */
    tf_server_free(ts);
}

static void test_stale_file_replaced_live_one_refused(void **state)
{
    unix_env_t *e = *state;
    /* A file left by a server that is gone. */
    int old = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", e->path);
    assert_int_equal(bind(old, (struct sockaddr *)&un, sizeof(un)), 0);
    close(old);

    tf_server_t *a = unix_server(e, 0660, 0);
    TF_ASSERT_RC(tf_server_start(a), 0);
    tf_server_t *b = unix_server(e, 0660, 0);
    TF_ASSERT_RC(tf_server_start(b), ZINX_EADDRINUSE);
    tf_server_free(b);

    /* The refused server left the live file alone. */
    int fd = unix_connect(e->path);
    assert_true(fd >= 0);
    echo_once(fd);
    close(fd);
    tf_server_free(a);
}

static atomic_int client_got;

static void client_reply(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_msg_t m = zinx_request_msg(req);
    if (m.id == 7 && m.len == 5 && memcmp(m.data, "hello", 5) == 0)
        atomic_fetch_add(&client_got, 1);
}

static void test_dialer_and_sync_client(void **state)
{
    unix_env_t *e = *state;
    tf_server_t *ts = unix_server(e, 0660, 2);
    TF_ASSERT_RC(tf_server_start(ts), 0);

    zinx_config_t cfg;
    tf_config(&cfg);
    zinx_server_t *cli = zinx_client_new(&cfg);
    zinx_router_t r = {.handle = client_reply};
    assert_int_equal(zinx_server_add_router(cli, 7, &r), 0);
    TF_ASSERT_RC(zinx_server_start(cli), 0);
    zinx_dialer_t *d;
    TF_ASSERT_RC(zinx_server_dial(cli, e->host, 0, NULL, &d), 0);
    zinx_conn_t *c;
    TF_ASSERT_RC(zinx_dialer_wait(d, 3000, &c), 0);
    assert_string_equal(zinx_conn_remote_addr(c), e->path);
    TF_ASSERT_RC(zinx_conn_send_msg(c, 7, "hello", 5), 0);
    assert_int_equal(tf_wait_atomic_ge(&client_got, 1, 3000), 1);
    zinx_conn_unref(c);
    zinx_dialer_close(d);
    zinx_server_free(cli);

    zinx_sync_client_t *sc;
    zinx_sync_opts_t o = {0};
    TF_ASSERT_RC(zinx_sync_client_open(e->host, 0, &o, &sc), 0);
    zinx_msg_t reply;
    TF_ASSERT_RC(zinx_sync_client_call(sc, 9, "ping", 4, 9, 3000, &reply), 0);
    assert_int_equal(reply.id, 9);
    assert_memory_equal(reply.data, "ping", 4);
    zinx_sync_msg_free(&reply);
    zinx_sync_client_free(sc);
    tf_server_free(ts);
}

static void test_adopted_socketpair(void **state)
{
    (void)state;
    tf_server_t *ts = tf_server_new(NULL);
    zinx_router_t echo = {.handle = tf_echo};
    assert_int_equal(zinx_server_set_fallback_router(ts->srv, &echo), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    TF_ASSERT_RC(zinx_server_adopt_fd(ts->srv, sv[0]), 0);
    echo_once(sv[1]);
    close(sv[1]);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(closed), 1, tf_ms(5000)), 1);
    tf_server_free(ts);
}

static void test_bad_paths_refused(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    snprintf(cfg.host, sizeof(cfg.host), "unix:/nonexistent-dir-zinx/s.sock");
    tf_server_t *ts = tf_server_new(&cfg);
    assert_true(tf_server_start(ts) < 0);
    tf_server_free(ts);

    zinx_sync_client_t *sc;
    zinx_sync_opts_t o = {.connect_timeout_ms = 500};
    assert_true(zinx_sync_client_open("unix:/nonexistent-dir-zinx/s.sock", 0,
                                      &o, &sc) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_server_file_mode_addrs_and_removal,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_stale_file_replaced_live_one_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dialer_and_sync_client, setup,
                                        teardown),
        cmocka_unit_test(test_adopted_socketpair),
        cmocka_unit_test(test_bad_paths_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
