"""TensorFlow imported without its start-up noise on standard error.

Importing TensorFlow and creating its devices print lines such as "oneDNN custom operations are
on", "Could not find cuda drivers" and "failed call to cuInit" from C++ (absl logging), even with
TF_CPP_MIN_LOG_LEVEL=3. The command-line tools call `import_tensorflow()` first: it points file
descriptor 2 at /dev/null while TensorFlow loads and lists its devices, then restores it, so our
own messages, warnings and errors (and Python tracebacks) still appear. TensorFlow's Python logger
is set to errors only: its warnings are about its own machinery, e.g. "5 out of the last 11 calls
to <function ...translate> triggered tf.function retracing" when decode.tune_length_penalty traces
one search per length penalty, as designed. --verbose (or NMT_VERBOSE=1) keeps all of TensorFlow's
messages.
"""

from __future__ import annotations

import logging
import os
import sys


def verbose_requested() -> bool:
    return os.environ.get("NMT_VERBOSE", "").lower() in ("1", "true", "yes")


def import_tensorflow(verbose: bool = False) -> None:
    """Imports tensorflow, tensorflow_text and keras (and initialises the devices) quietly. Unless
    verbose (or NMT_VERBOSE=1), TensorFlow's C++ log level is also set to errors-only-fatal (3): its
    runtime notes ("oneDNN supports DT_INT64 only on ...") would interleave with our output, and every
    error that matters reaches Python as an exception."""
    if verbose:
        os.environ["NMT_VERBOSE"] = "1"
    if "tensorflow" in sys.modules or verbose_requested():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import keras  # noqa: F401
        import tensorflow as tf
        import tensorflow_text  # noqa: F401

        tf.config.list_physical_devices()
        tf.get_logger().setLevel(logging.ERROR)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
