"""The Zinx network layer on the C core (the port's znet package):
server, router, request, connection, connmanager, message, datapack,
client, msghandler."""
