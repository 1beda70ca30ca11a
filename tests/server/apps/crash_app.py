"""A worker that dies at import, killed by a signal (as a crashing C
extension would), before it can serve."""
import os
import signal

os.kill(os.getpid(), signal.SIGKILL)
