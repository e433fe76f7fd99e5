/*
 * The kcp-go peer of the KCP tests (tests/go/kcp_peer, built into
 * bin/kcp_peer when go and Debian's kcp-go are found): starting it as a
 * server or running it as a client, from the test's own thread.
 */
#ifndef ZINX_TEST_KCP_PEER_H
#define ZINX_TEST_KCP_PEER_H

#include <sys/types.h>

/*
 * The peer's program (ZINX_KCP_PEER_PATH, compiled in), or NULL when it
 * was not built: then the test is skipped, printing "skipped: kcp_peer
 * ...", except under CI=true, where that fails the test. Call from a
 * test function.
 */
const char *kp_require(void);

typedef struct kp_server {
    pid_t pid;
    int in;   /* its stdin: closing it ends the server */
    int port; /* its UDP port */
} kp_server_t;

/*
 * Starts `kcp_peer server ARGS...` (args NULL-terminated, may be NULL)
 * and reads the UDP port it prints. Fails the test when it does not
 * come up within 20 s.
 */
void kp_server_start(kp_server_t *s, const char *exe, const char *const args[]);

/* Ends the server (stdin closed, then SIGKILL after 5 s). Idempotent. */
void kp_server_stop(kp_server_t *s);

/*
 * Runs `kcp_peer client ARGS...` to its end, at most timeout_ms (then it
 * is killed). Its stdout's first line goes to summary (always
 * NUL-terminated). Returns its exit status, or -1 when it was killed.
 */
int kp_client_run(const char *exe, const char *const args[], int timeout_ms,
                  char *summary, size_t summary_len);

#endif /* ZINX_TEST_KCP_PEER_H */
