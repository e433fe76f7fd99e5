/*
 * A real browser as the WebSocket client: headless Chromium loads a page
 * (tests/node/browser.js serves it) that sends Zinx TLV frames built in
 * JavaScript to the server and checks the echoes. A wss:// variant needs
 * only the server's TLS and the URL's scheme (see browser.js).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"

extern char **environ;

/* node, the ws package and chromium; skips (fails under CI) without. */
static void need_peers(char *script, size_t cap)
{
    const char *data = getenv("ZINX_TEST_DATA_DIR");
    assert_non_null(data);
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "bash '%s/../node/install.sh' >&2", data);
    const char *chromium = getenv("ZINX_TEST_CHROMIUM");
    if (chromium == NULL)
        chromium = "/usr/bin/chromium";
    if (system("command -v node >/dev/null") != 0 || system(cmd) != 0 ||
        access(chromium, X_OK) != 0) {
        const char *ci = getenv("CI");
        if (ci != NULL && strcmp(ci, "true") == 0)
            fail_msg("node, npm's ws package or %s missing under CI", chromium);
        skip();
    }
    snprintf(script, cap, "%s/../node/browser.js", data);
}

static int run_browser(const char *url)
{
    char script[4096];
    need_peers(script, sizeof(script));
    char *argv[] = {"node", script, (char *)url, NULL};
    pid_t pid;
    if (posix_spawnp(&pid, "node", NULL, NULL, argv, environ) != 0)
        return -1;
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_chromium_ws(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.mode = ZINX_MODE_WEBSOCKET;
    cfg.ws_port = 0;
    snprintf(cfg.ws_path, sizeof(cfg.ws_path), "/zinx");
    zinx_server_t *s = tf_echo_server_new(&cfg);
    assert_int_equal(zinx_server_start(s), 0);
    char url[128];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/zinx",
             zinx_server_ws_port(s));
    int rc = run_browser(url);
    zinx_server_stats_t st;
    zinx_server_stats(s, &st);
    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    zinx_server_free(s);
    assert_int_equal(rc, 0);
    assert_int_equal(st.ws_refused, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chromium_ws),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
