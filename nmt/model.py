"""The encoder–decoder models and their configuration (the YAML `model:` section).

Two architectures on `nmt.gru.GRU`, chosen by `ModelConfig.architecture`:

- "cho2014" (Cho et al. 2014): unidirectional encoder, summary c = tanh(V·h_N), decoder GRU with c
  in every gate, deep output from (h'_t, e(y_{t-1}), c).
- "attention" (Bahdanau et al. 2015): bidirectional encoder, additive attention, the context c_i
  in every gate of the decoder GRU and in the deep output; s_0 = tanh(W_s·←h_1).
  With `attention_position: luong` the decoder GRU runs first and attention reads its outputs
  (`nmt.luong`, the fast recipe of configs/multi30k.yaml); `attention_score`, `residual_norm`,
  `encoder_merge` and `decoder_init` choose the rest. The defaults are the paper's model.

Training (teacher forcing): `model((source_ids [B, S], target_in [B, T])) -> logits float32
[B, T, V]` (target_in starts with BOS, both 0-padded at the end).

Decoding (the protocol `nmt.search` relies on), with the same weights:
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

import dataclasses
from dataclasses import dataclass

import keras
import tensorflow as tf

from nmt.attention import SCORES
from nmt.decoder import DECODER_INITS, AttentionDecoder, Cho2014Decoder
from nmt.encoder import Encoder
from nmt.errors import UserError
from nmt.luong import LuongDecoder

ARCHITECTURES = ("cho2014", "attention")
DEEP_OUTPUTS = ("maxout", "tanh", "none")
ATTENTION_POSITIONS = ("bahdanau", "luong")
ENCODER_MERGES = ("concat", "sum")


@dataclass(frozen=True)
class ModelConfig:
    """The `model:` section. Sizes are positive integers, dropout rates in [0, 1).

    architecture: "cho2014" | "attention".
    embedding_dim: source and target embedding size.
    encoder_units: encoder GRU size (per direction for "attention").
    encoder_layers: stacked encoder GRUs (bidirectional ones for "attention").
    decoder_units: decoder GRU size.
    attention_units: size of the attention's hidden layer, or of its query/key projections for
        the dot-product scores ("attention" only).
    attention_position: "bahdanau" (the paper's: attention reads s_{i-1} inside the recurrence,
        its context enters the GRU and the readout) or "luong" (the decoder GRU runs first over
        the whole target sequence; attention over its outputs for all steps at once; `nmt.luong`).
    attention_score: "additive" (Bahdanau's), "dot" or "scaled_dot" (luong only).
    residual_norm: luong only: o = LayerNorm(h + c·W_o + b) instead of Luong's tanh([c; h]·W_c).
    encoder_merge: "concat" [→h; ←h] or "sum" →h + ←h of the bidirectional encoder ("attention").
    decoder_init: the attention decoder's first state: "projection" tanh(←h_1·W_s) (Bahdanau's),
        "backward" ←h_1 itself (encoder_units == decoder_units), or "zeros".
    deep_output: "maxout" (the papers': maxout over pairs, output_dim must be even), "tanh"
        (a simpler readout: tanh of the same sum, no halving) or "none" (luong only: the
        vocabulary projection reads the attention output directly; output_dim unused).
    output_dim: size of the deep output before maxout/tanh.
    embedding_dropout: on source and target embeddings.
    layer_dropout: between stacked encoder layers.
    output_dropout: before the vocabulary projection.
    tie_embeddings: the vocabulary projection reuses the target embedding (needs the readout
        size, output_dim/2 for maxout or output_dim for tanh, equal to embedding_dim).
    """

    architecture: str = "attention"
    embedding_dim: int = 256
    encoder_units: int = 256
    encoder_layers: int = 1
    decoder_units: int = 512
    attention_units: int = 512
    attention_position: str = "bahdanau"
    attention_score: str = "additive"
    residual_norm: bool = False
    encoder_merge: str = "concat"
    decoder_init: str = "projection"
    deep_output: str = "maxout"
    output_dim: int = 512
    embedding_dropout: float = 0.0
    layer_dropout: float = 0.0
    output_dropout: float = 0.0
    tie_embeddings: bool = False

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        """Builds from a plain mapping (the YAML section), rejecting unknown keys."""
        if not isinstance(values, dict):
            raise UserError(f"model: expected a mapping, received {type(values).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in names:
                raise UserError(f"model.{key}: unknown key; expected one of {', '.join(names)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __post_init__(self):
        def fail(name, received, expected):
            raise UserError(f"model.{name}: received {received!r}, expected {expected}")

        for name, choices in (
            ("architecture", ARCHITECTURES),
            ("deep_output", DEEP_OUTPUTS),
            ("attention_position", ATTENTION_POSITIONS),
            ("attention_score", SCORES),
            ("encoder_merge", ENCODER_MERGES),
            ("decoder_init", DECODER_INITS),
        ):
            value = getattr(self, name)
            if value not in choices:
                fail(name, value, "one of " + ", ".join(choices))
        if not isinstance(self.residual_norm, bool):
            fail("residual_norm", self.residual_norm, "true or false")
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        if self.architecture == "cho2014":
            for name in ("attention_position", "attention_score", "residual_norm", "encoder_merge", "decoder_init"):
                if getattr(self, name) != defaults[name]:
                    fail(
                        name, getattr(self, name), f"{defaults[name]!r} with architecture cho2014 (an attention option)"
                    )
        if self.attention_position != "luong":
            where = "architecture cho2014" if self.architecture == "cho2014" else "attention_position bahdanau"
            for name, allowed in (
                ("attention_score", ("additive",)),
                ("residual_norm", (False,)),
                ("deep_output", ("maxout", "tanh")),
            ):
                value = getattr(self, name)
                if value not in allowed:
                    expected = " or ".join(str(a).lower() for a in allowed)
                    fail(name, value, f"{expected} with {where} (this value needs attention_position luong)")
        for name in (
            "embedding_dim",
            "encoder_units",
            "encoder_layers",
            "decoder_units",
            "attention_units",
            "output_dim",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                fail(name, value, "a positive integer")
        for name in ("embedding_dropout", "layer_dropout", "output_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                fail(name, value, "a number in [0, 1)")
            if not 0.0 <= value < 1.0:
                fail(name, value, "a number in [0, 1)")
        if not isinstance(self.tie_embeddings, bool):
            fail("tie_embeddings", self.tie_embeddings, "true or false")
        if self.decoder_init == "backward" and self.encoder_units != self.decoder_units:
            fail(
                "decoder_init",
                "backward",
                f"projection or zeros, or encoder_units ({self.encoder_units}) equal to decoder_units "
                f"({self.decoder_units})",
            )
        if self.deep_output == "maxout" and self.output_dim % 2:
            fail("output_dim", self.output_dim, "an even size (maxout takes pairs of units)")
        if self.tie_embeddings and self.readout_dim != self.embedding_dim:
            fail(
                "tie_embeddings",
                True,
                f"false, or a readout size ({self.readout_dim}, from deep_output "
                f"{self.deep_output} and output_dim {self.output_dim}) equal to embedding_dim "
                f"({self.embedding_dim})",
            )

    @property
    def readout_dim(self) -> int:
        """What the vocabulary projection reads: output_dim/2 (maxout), output_dim (tanh) or
        decoder_units (none)."""
        if self.deep_output == "none":
            return self.decoder_units
        return self.output_dim // 2 if self.deep_output == "maxout" else self.output_dim


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
        None)."""
        logits, new_state, attention = self.decoder.step(tokens, state)
        return tf.nn.log_softmax(logits, axis=-1), new_state, attention

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
