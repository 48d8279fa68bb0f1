"""TensorFlow imported without its start-up noise on standard error.

Importing TensorFlow and creating its devices print lines such as "oneDNN custom operations are
on", "Could not find cuda drivers" and "failed call to cuInit" from C++ (absl logging), even with
TF_CPP_MIN_LOG_LEVEL=3. The command-line tools call `import_tensorflow()` first: it points file
descriptor 2 at /dev/null while TensorFlow loads and lists its devices, then restores it, so our
own messages, warnings and errors (and Python tracebacks) still appear. NMT_VERBOSE=1 keeps
TensorFlow's messages.
"""

from __future__ import annotations

import os
import sys


def verbose() -> bool:
    return os.environ.get("NMT_VERBOSE", "").lower() in ("1", "true", "yes")


def import_tensorflow() -> None:
    """Imports tensorflow, tensorflow_text and keras (and initialises the devices) quietly."""
    if "tensorflow" in sys.modules or verbose():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import tensorflow as tf
        import tensorflow_text  # noqa: F401
        import keras  # noqa: F401

        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
