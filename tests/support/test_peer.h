/*
 * What the tests that start a real peer (nats-server, haproxy,
 * prometheus) share before they start it: where its program is, and a
 * loopback port to give it.
 */
#ifndef ZINX_TEST_PEER_H
#define ZINX_TEST_PEER_H

/*
 * The first executable of fixed[] (absolute paths, NULL-terminated:
 * Debian puts servers in /usr/sbin, which a user's PATH may lack), else
 * name found along $PATH; NULL when there is none. The result is fixed[]'s
 * string or a static buffer, valid until the next call.
 */
const char *tp_find_program(const char *name, const char *const fixed[]);

/*
 * A loopback TCP port that was free a moment ago, for a peer that takes
 * its port by number (another process may take it meanwhile: callers
 * that can, retry). Fails the test when no socket can be bound.
 */
int tp_free_port(void);

#endif /* ZINX_TEST_PEER_H */
