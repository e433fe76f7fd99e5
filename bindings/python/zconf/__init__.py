"""The configuration of Zinx programs (the port's zconf package).

``from zconf import GlobalObject``: see zconf.globalobj.
"""

from zconf.globalobj import GlobalObject

__all__ = ["GlobalObject"]
