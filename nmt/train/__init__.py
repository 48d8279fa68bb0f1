"""Training: the run directory's preparation, training batches (tf.data), losses, optimiser, callbacks,
checkpoints, precision and distribution, all driven by Keras `fit` from `trainer.train`."""
