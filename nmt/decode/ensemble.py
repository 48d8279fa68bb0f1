"""Ensembles: several models decoded as one, their per-step probabilities averaged.

`Ensemble` implements the decoder protocol of `nmt.decode.search` (``encode`` / ``decode_step``) over
models that share a vocabulary, so beam search, n-best lists, scoring (`nmt.decode.scoring`) and the
SavedModel (`nmt.decode.graph`) work for it as for one model:

    p(y_t | y_<t, x) = (1/M) Σ_m p_m(y_t | y_<t, x)        log: logsumexp_m(log p_m) − log M

Each model keeps its own state ({"memory": {"m0": ..., "m1": ...}, "recurrent": {...}}); the attention
weights, where every model has them, are their mean.
"""

from __future__ import annotations

import math

import tensorflow as tf


class Ensemble(tf.Module):
    """models: `nmt.model.seq2seq.Seq2Seq` models with the same source and target vocabularies."""

    def __init__(self, models, name: str = "ensemble"):
        super().__init__(name=name)
        models = list(models)
        if len(models) < 2:
            raise ValueError(f"an ensemble needs at least two models, got {len(models)}")
        first = models[0]
        for m in models[1:]:
            if (m.src_vocab_size, m.tgt_vocab_size) != (first.src_vocab_size, first.tgt_vocab_size):
                raise ValueError("the models of an ensemble must share their vocabularies")
        self.models = models
        self.src_vocab_size, self.tgt_vocab_size = first.src_vocab_size, first.tgt_vocab_size
        architectures = {m.model_config.architecture for m in models}
        #: the first model's config, with the architecture "attention" only when every model has attention
        self.model_config = first.model_config
        self.has_attention = architectures == {"attention"}

    @staticmethod
    def _key(i: int) -> str:
        return f"m{i}"

    def encode(self, source_ids):
        """source_ids int32[B, S] -> {"memory": {m_i: ...}, "recurrent": {m_i: ...}}, one entry per model."""
        states = [m.encode(source_ids) for m in self.models]
        return {
            "memory": {self._key(i): s["memory"] for i, s in enumerate(states)},
            "recurrent": {self._key(i): s["recurrent"] for i, s in enumerate(states)},
        }

    def output_weights(self, vocabulary):
        """Every model's output projection restricted to vocabulary int32[V'] (`Seq2Seq.output_weights`)."""
        return {self._key(i): m.output_weights(vocabulary) for i, m in enumerate(self.models)}

    def decode_step(self, tokens, state):
        """tokens int32[R], state -> (log of the mean probability float32[R, V] (V' with state["output"]),
        new state, mean attention float32[R, S] where every model returns attention, else None)."""
        log_probs, recurrent, attentions = [], {}, []
        for i, model in enumerate(self.models):
            key = self._key(i)
            member = {"memory": state["memory"][key], "recurrent": state["recurrent"][key]}
            if "output" in state:
                member["output"] = state["output"][key]
            lp, new, attention = model.decode_step(tokens, member)
            log_probs.append(tf.cast(lp, tf.float32))
            recurrent[key] = new["recurrent"]
            attentions.append(attention)
        mean = tf.reduce_logsumexp(tf.stack(log_probs), axis=0) - math.log(len(self.models))  # [R, V]
        attention = None
        if all(a is not None for a in attentions):
            attention = tf.add_n([tf.cast(a, tf.float32) for a in attentions]) / len(attentions)
        return mean, {"memory": state["memory"], "recurrent": recurrent}, attention
