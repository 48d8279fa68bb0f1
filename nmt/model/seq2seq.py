"""The encoder–decoder models and their configuration (the YAML `model:` section).

Two architectures on `nmt.model.gru.GRU`, chosen by `ModelConfig.architecture`:

- "cho2014" (Cho et al. 2014, `nmt.model.cho2014`): unidirectional encoder, summary
  c = tanh(V·h_N), decoder GRU with c in every gate, deep output from (h'_t, e(y_{t-1}), c).
- "attention" (Bahdanau et al. 2015, `nmt.model.bahdanau`): bidirectional encoder, additive
  attention, the context c_i in every gate of the decoder GRU and in the deep output;
  s_0 = tanh(W_s·←h_1).
  With `attention_position: luong` the decoder GRU runs first and attention reads its outputs
  (`nmt.model.luong`, the fast recipe of configs/multi30k.yaml); `attention_score`, `residual_norm`,
  `encoder_merge` and `decoder_init` choose the rest. The defaults are the paper's model.

Training (teacher forcing): `model((source_ids [B, S], target_in [B, T])) -> logits float32
[B, T, V]` (target_in starts with BOS, both 0-padded at the end).

Decoding (the protocol `nmt.decode.search` relies on), with the same weights:
    state = model.encode(source_ids)                  # {"memory": {...}, "recurrent": {...}}
    log_probs, state, attention = model.decode_step(tokens, state)
tokens int32 [B], log_probs float32 [B, V], attention float32 [B, S] (None for cho2014). Every
state leaf is batch-major [B, ...]:
    recurrent: "hidden" [B, decoder_units]
    memory (attention): "encoder_outputs" [B, S, 2·encoder_units], "keys" [B, S, attention_units],
                        "source_mask" float32 [B, S]
    memory (cho2014):   "context" c [B, encoder_units], "context_gates" c·C [B, 3·decoder_units],
                        "context_readout" O_c·c [B, output_dim], "source_mask" float32 [B, S]
Leaves are in the compute dtype (bfloat16 under mixed_bfloat16) except source_mask.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from nmt.config import ModelConfig
from nmt.errors import UserError
from nmt.model.bahdanau import AttentionDecoder
from nmt.model.cho2014 import Cho2014Decoder
from nmt.model.encoder import Encoder
from nmt.model.luong import LuongDecoder


class Seq2Seq(keras.Model):
    """Encoder–decoder; see the module docstring for the call and the step API.

    All weights are created at construction (sizes come from the config), so `summary()` and
    `count_params()` work before the first call and a `.keras` file reloads without a build step.
    """

    bidirectional = False
    decoder_class = None

    def __init__(self, config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = ModelConfig.from_dict(config)
        self.model_config = config
        self.src_vocab_size = int(src_vocab_size)
        self.tgt_vocab_size = int(tgt_vocab_size)
        policy = self.dtype_policy
        self.encoder = Encoder(
            self.src_vocab_size,
            config.embedding_dim,
            config.encoder_units,
            num_layers=config.encoder_layers,
            bidirectional=self.bidirectional,
            embedding_dropout=config.embedding_dropout,
            layer_dropout=config.layer_dropout,
            word_dropout=config.word_dropout,
            merge=config.encoder_merge,
            dtype=policy,
            name="encoder",
        )
        self.decoder = self._make_decoder(config, policy)
        self.build()

    def _make_decoder(self, config, policy):
        raise NotImplementedError

    def _decoder_kwargs(self, config, policy):
        return dict(
            vocab_size=self.tgt_vocab_size,
            embedding_dim=config.embedding_dim,
            units=config.decoder_units,
            encoder_dim=self.encoder.output_dim,
            output_dim=config.output_dim,
            deep_output=config.deep_output,
            embedding_dropout=config.embedding_dropout,
            output_dropout=config.output_dropout,
            tie_embeddings=config.tie_embeddings,
            word_dropout=config.word_dropout,
            dtype=policy,
            name="decoder",
        )

    def build(self, input_shape=None):
        self.encoder.build()
        self.decoder.build()
        self.built = True

    def encode(self, source_ids, training=False):
        """source_ids int [B, S] (0-padded) -> state {"memory": {...}, "recurrent": {"hidden"}}."""
        outputs, final_states, mask = self.encoder(source_ids, training=training)
        return self.decoder.start(outputs, final_states, mask)

    def decode_step(self, tokens, state):
        """tokens int [B] (the previous target token, BOS first), state ->
        (log_probs float32 [B, V], new state (memory unchanged), attention float32 [B, S] or
        None). With state["output"] = `output_weights(vocabulary)`, log_probs over those V' ids only
        (normalized over them): [B, V']."""
        logits, new_state, attention = self.decoder.step(tokens, state)
        return tf.nn.log_softmax(logits, axis=-1), new_state, attention

    def output_weights(self, vocabulary):
        """The output projection restricted to the target ids vocabulary int32[V'] (a shortlist,
        `nmt.decode.shortlist`), for state["output"] of `decode_step` (`Decoder.output_weights`)."""
        return self.decoder.output_weights(vocabulary)

    def call(self, inputs, training=None):
        """(source_ids int [B, S], target_in int [B, T]) -> logits float32 [B, T, V]."""
        source_ids, target_in = inputs
        state = self.encode(source_ids, training=training)
        return self.decoder.call(target_in, state, training=training)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "config": self.model_config.to_dict(),
            "src_vocab_size": self.src_vocab_size,
            "tgt_vocab_size": self.tgt_vocab_size,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        model_config = ModelConfig.from_dict(config.pop("config"))
        if "dtype" in config and isinstance(config["dtype"], dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(model_config, **config)


@keras.saving.register_keras_serializable(package="nmt")
class Cho2014Model(Seq2Seq):
    """Cho et al. 2014 (architecture "cho2014")."""

    bidirectional = False

    def _make_decoder(self, config, policy):
        return Cho2014Decoder(**self._decoder_kwargs(config, policy))


@keras.saving.register_keras_serializable(package="nmt")
class AttentionModel(Seq2Seq):
    """Bahdanau et al. 2015 (architecture "attention")."""

    bidirectional = True

    def _make_decoder(self, config, policy):
        common = dict(
            attention_units=config.attention_units,
            decoder_init=config.decoder_init,
            encoder_state_dim=config.encoder_units,
            **self._decoder_kwargs(config, policy),
        )
        if config.attention_position == "luong":
            return LuongDecoder(attention_score=config.attention_score, residual_norm=config.residual_norm, **common)
        return AttentionDecoder(**common)


def build_model(cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> Seq2Seq:
    """The model of `cfg.architecture` with its weights created (vocabulary sizes include the
    reserved ids PAD=0, UNK=1, BOS=2, EOS=3)."""
    for name, value in (("src_vocab_size", src_vocab_size), ("tgt_vocab_size", tgt_vocab_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 5:
            raise UserError(f"{name}: received {value!r}, expected an integer > 4 (4 reserved ids + words)")
    model_class = {"cho2014": Cho2014Model, "attention": AttentionModel}[cfg.architecture]
    return model_class(cfg, src_vocab_size, tgt_vocab_size, name=cfg.architecture)
