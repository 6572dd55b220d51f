"""The two ways the flash tool stops: bad input and a failed device step."""


class FlashError(Exception):
    """Bad input or set-up the technician can fix (a file, a port, the bundle).

    The CLI prints the message without a traceback and exits 2.
    """


class StepFailed(Exception):
    """A step of the plan ran and failed on the device; later steps were not run.

    The CLI prints the message without a traceback and exits 1.
    """
