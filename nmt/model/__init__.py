"""The networks: the GRU (cell and layer, the equations written once), the encoder, attention, one
module per decoder and the `Seq2Seq` model that joins them. Keras layers, registered for `.keras` saving."""
