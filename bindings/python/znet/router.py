"""BaseRouter: the router to subclass, overriding the steps you need."""

from ziface.irouter import IRouter


class BaseRouter(IRouter):
    """A router whose three steps do nothing: subclass it and override
    PreHandle, Handle and/or PostHandle.

    The steps a subclass leaves as they are cost nothing: they are not
    handed to the core (see steps_of), so no Python call is made for them.
    """

    def PreHandle(self, request):
        """Does nothing; override to run before Handle."""

    def Handle(self, request):
        """Does nothing; override to handle the message."""

    def PostHandle(self, request):
        """Does nothing; override to run after Handle."""


_STEPS = ("PreHandle", "Handle", "PostHandle")


def steps_of(router):
    """The (pre, handle, post) callables the core is given for router:
    the bound method of each step, or None for a step that is BaseRouter's
    own no-op (nor replaced on the instance)."""
    if not isinstance(router, IRouter):
        raise TypeError("a router must be an IRouter (subclass BaseRouter), "
                        "not %s" % type(router).__name__)
    on_instance = getattr(router, "__dict__", {})
    steps = []
    for name in _STEPS:
        inherited = getattr(type(router), name) is getattr(BaseRouter, name)
        if inherited and name not in on_instance:
            steps.append(None)
        else:
            steps.append(getattr(router, name))
    return tuple(steps)
