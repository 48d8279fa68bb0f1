"""Text in: reading files line by line, corpora and their filters, SentencePiece models (trained with
sentencepiece, applied in the graph with tensorflow-text), and BLEU/chrF scoring of text with sacreBLEU.
TensorFlow-free except `tokenizer`."""
