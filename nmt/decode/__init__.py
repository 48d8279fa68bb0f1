"""Decoding: the search settings (the one carrier of every decoding option), beam search, the
translation graph (also the SavedModel), the in-process translator and the length-penalty tuning.
`settings` is TensorFlow-free, so a command line checks its options before loading TensorFlow."""
