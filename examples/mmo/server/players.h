/*
 * The server's side of the protocol: the connection hooks that bring
 * players and map viewers in and out, and the routers of Talk (2) and
 * Move (3), which decode and check what players send on the library's
 * workers before the world thread sees it.
 */
#ifndef MMO_PLAYERS_H
#define MMO_PLAYERS_H

#include <zinx.h>

#include "engine.h"

/* Registers the hooks and routers on server; e must outlive it. Returns
   0 or a negative ZINX_E* code. Before zinx_server_start(). */
int mmo_players_install(zinx_server_t *server, mmo_engine_t *e);

#endif /* MMO_PLAYERS_H */
