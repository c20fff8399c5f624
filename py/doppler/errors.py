"""Errors a person can act on: each message names the thing that went wrong and the fix."""


class DopplerError(Exception):
    """Base of every error Doppler raises on purpose."""


class GpuError(DopplerError):
    """No adapter, a lost device, out of memory, a kernel that does not compile."""


class BudgetError(GpuError):
    """An allocation would exceed the GPU memory budget."""


class DeviceLostError(GpuError):
    """The GPU device was lost (driver reset, destroyed); a fresh device is opened for the next job."""


class ConvertError(DopplerError):
    """A checkpoint `doppler convert` cannot take: one line per problem, each naming the file or tensor and the fix."""

    def __init__(self, problems):
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))
