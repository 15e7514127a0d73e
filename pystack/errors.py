"""The two ways a command fails, each printed as one line: its job failed (status 1), or it could not
start here (status 2, like bad flags). At the package's top because every command family (the client
tools, the control socket, plot, replay, trace) raises them, and none of those should import another's room."""


class CommandError(Exception):
    """The command could not do its job (no lease, unknown name, refused): one line, exit status 1."""


class SetupError(Exception):
    """The environment does not allow the command (no TAP, cannot write a file): exit status 2."""
