"""Stops running servers and clients before the interpreter finalizes.

The core's threads call into Python (handlers, hooks, releasing
properties); once the interpreter has begun to finalize such a call would
hang or crash. atexit handlers run before that, on the main thread, so
every endpoint still running then is stopped here, gracefully.
"""

import atexit
import threading

_lock = threading.Lock()
_running = set()  # endpoints started and not known to be stopped


def started(endpoint):
    """endpoint (an object with Stop()) has started."""
    with _lock:
        _running.add(endpoint)


def stopped(endpoint):
    """endpoint has stopped completely (its Stop returned on a thread that
    is not one of the core's, or its Serve returned)."""
    with _lock:
        _running.discard(endpoint)


def is_main_thread():
    """True on the interpreter's main thread, which never runs a handler:
    a Stop() there is a complete stop, not only a request."""
    return threading.current_thread() is threading.main_thread()


def _stop_all():
    with _lock:
        endpoints = list(_running)
        _running.clear()
    for endpoint in endpoints:
        endpoint.Stop()


atexit.register(_stop_all)
