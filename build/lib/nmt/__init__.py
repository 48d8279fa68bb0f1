"""nmt: GRU encoder-decoder machine translation on Keras 3 / TensorFlow."""

__version__ = "0.1.0"
