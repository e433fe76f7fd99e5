"""The abstract interfaces of Zinx, one module per interface as in the Go
and Python ports (iserver, irouter, irequest, iconnection, iconnmanager,
imessage, idatapack, imsghandler, iclient).

They are abc.ABC classes: the classes of znet implement (or, for the C
module's Connection and Request, are registered with) them, so
``isinstance(conn, IConnection)`` holds for what a hook receives.
"""
