/*
 * Without ClusterName nothing of NATS is linked in or loaded: the shared
 * library has no libnats among its DT_NEEDED entries, and a process
 * that runs a server without a cluster never maps libnats. A program of
 * its own (the test process must not have loaded libnats before), which
 * ends by joining a cluster to show that the same check sees libnats
 * once it is loaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_client.h"
#include "test_fixture.h"
#include "zinx.h"

#define TLV ZINX_FORMAT_TLV

/* 1 when a line of f names `what`. */
static int file_mentions(FILE *f, const char *what)
{
    char line[1024];
    int found = 0;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        found |= strstr(line, what) != NULL;
    return found;
}

static int maps_libnats(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    int found = file_mentions(f, "libnats");
    fclose(f);
    return found;
}

static void test_no_needed_entry(void **state)
{
    (void)state;
    char exe[512], cmd[1200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    assert_non_null(slash);
    *slash = '\0'; /* build/bin */
    snprintf(cmd, sizeof(cmd), "readelf -d %s/../lib/libzinx.so 2>&1", exe);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[1024];
    int needed = 0, nats = 0;
    while (fgets(line, sizeof(line), p) != NULL) {
        needed += strstr(line, "(NEEDED)") != NULL;
        nats += strstr(line, "libnats") != NULL;
    }
    assert_int_equal(pclose(p), 0);
    assert_true(needed > 0); /* readelf did read the library */
    assert_int_equal(nats, 0);
}

static void test_not_loaded_without_key(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(tc_echo_call(fd, TLV, "x", 1, tf_ms(5000)), 0);
    uint64_t id = 1;
    assert_true(zinx_server_notify(s, &id, 1, 5, "n", 1) >= 0);
    assert_true(zinx_server_broadcast(s, 5, "b", 1) >= 1);
    assert_int_equal(maps_libnats(), 0);
    tc_close(fd);
    zinx_server_free(s);
    assert_int_equal(maps_libnats(), 0);

    /* The check can see it: a server that joins loads libnats (its
       start then fails: no NATS listens on port 1). */
    snprintf(cfg.cluster_name, sizeof(cfg.cluster_name), "nolib");
    snprintf(cfg.cluster_nats_url, sizeof(cfg.cluster_nats_url),
             "nats://127.0.0.1:1");
    cfg.cluster_node = 1;
    s = tf_echo_server_new(&cfg);
    int rc = zinx_server_start(s);
    zinx_server_free(s);
#ifdef ZINX_TEST_HAVE_NATS
    assert_int_equal(rc, ZINX_ECLOSED);
    assert_int_equal(maps_libnats(), 1);
#else
    assert_int_equal(rc, ZINX_ENOTSUP);
    assert_int_equal(maps_libnats(), 0);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_needed_entry),
        cmocka_unit_test(test_not_loaded_without_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
