/*
 * A real nats-server (Debian's nats-server) for the cluster's tests: on
 * 127.0.0.1 and a free port, in a child process that dies with the
 * test (PR_SET_PDEATHSIG), stopped by tn_stop() on every path the test
 * takes (call it from a cmocka teardown too).
 *
 * tn_start() fails the test when nats-server is missing under CI=true,
 * and skips it otherwise. Call these on the test's own thread.
 */
#ifndef TEST_NATS_H
#define TEST_NATS_H

#include <sys/types.h>

typedef struct tn_server {
    pid_t pid;
    int port;
    char url[64]; /* nats://127.0.0.1:PORT */
} tn_server_t;

/* The nats-server program, or NULL when there is none. */
const char *tn_path(void);
/* Starts one on a free port (port 0) or on n->port, waits until it
   accepts connections. */
void tn_start(tn_server_t *n);
/* Stops it (SIGTERM, then SIGKILL after 5 s); harmless when stopped. */
void tn_stop(tn_server_t *n);
/* Kills it at once (SIGKILL), keeping its port for a restart. */
void tn_kill(tn_server_t *n);

#endif /* TEST_NATS_H */
