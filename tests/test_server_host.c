/*
 * Host as Zinx takes it: a name resolved once at start ("localhost"), ""
 * for every interface, and a name that does not resolve failing the start
 * with ZINX_ENOENT. Each test proves the listener works by an echo round
 * trip, not by connect() alone (the kernel completes a connect before the
 * server accepts).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 10000

static tf_server_t *start_on(const char *host, int expect_rc)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    snprintf(cfg.host, sizeof(cfg.host), "%s", host);
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t echo = {.handle = tf_echo};
    assert_int_equal(zinx_server_add_router(ts->srv, 1, &echo), 0);
    assert_string_equal(zinx_server_listen_host(ts->srv), "");
    TF_ASSERT_RC(tf_server_start(ts), expect_rc);
    return ts;
}

/* One echo through fd, then closes it. */
static void echo_once(int fd)
{
    uint8_t buf[16];
    uint32_t id = 0;
    uint32_t len = 0;
    assert_true(fd >= 0);
    TF_ASSERT_RC(tc_roundtrip(fd, TLV, 1, "ping", 4, &id, buf, sizeof(buf),
                              &len, tf_ms(T_IO)),
                 0);
    assert_int_equal(id, 1);
    assert_int_equal(len, 4);
    assert_memory_equal(buf, "ping", 4);
    tc_close(fd);
}

/* A blocking connection to [::1]:port, or -1. */
static int connect_ipv6_loopback(int port)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                             .sin6_port = htons((uint16_t)port)};
    a.sin6_addr = in6addr_loopback;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Whether this machine has a usable ::1 (containers often have none). */
static int have_ipv6_loopback(void)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    a.sin6_addr = in6addr_loopback;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* "localhost" resolves, IPv4 first (as Go), and serves on 127.0.0.1. */
static void test_host_localhost(void **state)
{
    (void)state;
    tf_server_t *ts = start_on("localhost", 0);
    assert_string_equal(zinx_server_listen_host(ts->srv), "127.0.0.1");
    echo_once(tc_connect(ts->port));
    tf_server_free(ts);
}

/* "" is every interface: dual-stack "::", or 0.0.0.0 without IPv6. */
static void test_host_empty_is_every_interface(void **state)
{
    (void)state;
    tf_server_t *ts = start_on("", 0);
    const char *bound = zinx_server_listen_host(ts->srv);
    if (strcmp(bound, "::") != 0)
        assert_string_equal(bound, "0.0.0.0");
    echo_once(tc_connect(ts->port));
    if (strcmp(bound, "::") == 0 && have_ipv6_loopback())
        echo_once(connect_ipv6_loopback(ts->port));
    else
        print_message("no IPv6 loopback: [::1] not tried\n");
    tf_server_free(ts);
}

static void test_host_that_does_not_resolve(void **state)
{
    (void)state;
    tf_server_t *ts = start_on("no-such-host.invalid", ZINX_ENOENT);
    assert_string_equal(zinx_server_listen_host(ts->srv), "");
    /* The resolver's reason is logged (and start's own line). */
    assert_true(atomic_load(&ts->log_count[ZINX_LOG_ERROR]) >= 1);
    tf_server_free(ts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_localhost),
        cmocka_unit_test(test_host_empty_is_every_interface),
        cmocka_unit_test(test_host_that_does_not_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
