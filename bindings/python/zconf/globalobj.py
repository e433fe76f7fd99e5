"""GlobalObject: the configuration every NewServer() starts from.

It reads the same file as the C library ($ZINX_CONFIG_FILE_PATH, else
./conf/zinx.json), through the C module, so the keys, defaults and checks
are the library's own: one attribute per key (Host, TCPPort, Name,
MaxConn, WorkerPoolSize, PacketFormat, ...). Assigning an attribute
(``GlobalObject.TCPPort = 0``) records an override: it is checked at once
(ValueError for an unknown key or a bad value) and applies on top of the
file to every server or client created afterwards.
"""

import json
import threading

from znet import _core


class _GlobalObj:
    """The configuration: the file's values with the programmatic
    overrides on top. Thread-safe; values are read once and cached until
    an override changes or Reload() is called."""

    def __init__(self):
        # object.__setattr__: our own __setattr__ records overrides.
        object.__setattr__(self, "_lock", threading.Lock())
        object.__setattr__(self, "_overrides", {})
        object.__setattr__(self, "_values", None)

    def _effective(self, overrides):
        """The configuration the C library builds from the file and
        overrides, as a dict (raises ValueError when it refuses them)."""
        text = _core.zinx.config_json(json.dumps(overrides))
        return json.loads(text)

    def _load(self):
        with self._lock:
            if self._values is None:
                values = self._effective(self._overrides)
                object.__setattr__(self, "_values", values)
            return self._values

    def __getattr__(self, name):
        # Only called for names that are not regular attributes.
        if name.startswith("_"):
            raise AttributeError(name)
        values = self._load()
        try:
            return values[name]
        except KeyError:
            raise AttributeError(
                "GlobalObject has no key %r (keys: %s)"
                % (name, ", ".join(sorted(values)))) from None

    def __setattr__(self, name, value):
        if name.startswith("_"):
            raise AttributeError("GlobalObject keys do not start with '_'")
        known = self._load()
        if name not in known:
            # The C loader only warns about an unknown key (a file may
            # carry keys of other Zinx versions); a name typed in a
            # program is a mistake.
            raise ValueError("GlobalObject has no key %r (keys: %s)"
                             % (name, ", ".join(sorted(known))))
        with self._lock:
            overrides = dict(self._overrides)
            overrides[name] = value
            # Checked now, so a bad value fails where it is written
            # rather than at NewServer().
            values = self._effective(overrides)
            object.__setattr__(self, "_overrides", overrides)
            object.__setattr__(self, "_values", values)

    def __delattr__(self, name):
        """Drops the override of name: the file's value applies again."""
        with self._lock:
            if name not in self._overrides:
                raise AttributeError("%s is not overridden" % name)
            overrides = dict(self._overrides)
            del overrides[name]
            object.__setattr__(self, "_overrides", overrides)
            object.__setattr__(self, "_values", None)

    def __dir__(self):
        return sorted(set(self._load()) | set(type(self).__dict__))

    def Reload(self):
        """Reads the file again (the overrides stay)."""
        with self._lock:
            object.__setattr__(self, "_values", None)
        self._load()

    def _Invalidate(self):
        """Forgets the cached values: the next read loads the file again
        (NewServer calls it, as the file may have changed since)."""
        with self._lock:
            object.__setattr__(self, "_values", None)

    def Overrides(self):
        """The programmatic overrides, as a dict (a copy)."""
        with self._lock:
            return dict(self._overrides)

    def OverridesJSON(self, extra=None):
        """The overrides (plus extra, a dict that wins) as the JSON object
        text the C module takes."""
        with self._lock:
            merged = dict(self._overrides)
        if extra:
            merged.update(extra)
        return json.dumps(merged)

    def AsDict(self):
        """Every key with its effective value (a copy)."""
        return dict(self._load())

    def __repr__(self):
        return "GlobalObject(%r)" % (self._load(),)


GlobalObject = _GlobalObj()
