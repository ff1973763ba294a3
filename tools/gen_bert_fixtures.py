#!/usr/bin/env python3
"""Fixtures for distill's BERT / sentence-embedding tests.

    pip install -r tools/requirements.txt
    python3 tools/gen_bert_fixtures.py          # writes crates/distill/fixtures/bert/

A tiny BERT (transformers.BertModel with its pooler: vocab 30522, hidden 8, 2 layers, 2 heads,
intermediate 32 (4 × hidden, as every BERT), 64 positions, 2 token types, GELU, LayerNorm eps 1e-12) with random, seeded
float32 weights drawn wider than BERT's own initialiser N(0, 0.02) so that its outputs are far
from degenerate: weights N(0, 0.3), query and key weights N(0, 0.5), biases N(0, 0.1), LayerNorm
weights 1 + N(0, 0.1). (With every weight N(0, 0.5) the GELU's positive mean gives all tokens
one shared direction: the last hidden states of a sentence have mean pairwise cosine 0.95,
averaged over the six sentences; here 0.34, with attention rows whose largest probability is
2-9x the uniform one.) It is run the way
sentence-transformers runs all-MiniLM-L6-v2: Transformer (max_seq_length 32) -> mean Pooling ->
Normalize. Everything runs on the CPU with deterministic algorithms and no network access; the
model is loaded back from a temporary local folder, so what is checked is what
sentence-transformers itself computes from the committed files.
Writes:
  model.safetensors  the tiny BertModel's state dict (the names BertModel.state_dict() gives,
                     e.g. embeddings.word_embeddings.weight, encoder.layer.0.attention.self.query.weight,
                     pooler.dense.weight), saved by safetensors' save_file. The non-persistent
                     buffers embeddings.position_ids / embeddings.token_type_ids are not in it
                     (the real all-MiniLM-L6-v2 file does hold embeddings.position_ids [1, 512] I64)
  config.json        its BertConfig (config.save_pretrained)
  tokenizer.json     a copy of all-MiniLM-L6-v2's WordPiece tokenizer (Apache-2.0), from
                     /usr/share/datasets/all-minilm-l6-v2 (scripts/fetch-data.sh minilm)
  embeddings.json    the test sentences, max_seq_length, the token ids sentence-transformers feeds
                     the model (with [CLS]/[SEP], truncated at max_seq_length, unpadded), the
                     normalised and the unnormalised mean-pooled embeddings of every sentence, the
                     last hidden states [L, 8] of the first sentence, and the library versions
  minilm.json        (only when /usr/share/datasets/all-minilm-l6-v2 is installed) the same
                     sentences through the real all-MiniLM-L6-v2: its max_seq_length, token ids and
                     normalised embeddings (384 floats each)
"""
import os

# no hub look-ups: every model here is a local folder
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import argparse
import json
import shutil
import tempfile

import sentence_transformers
import tokenizers
import torch
import transformers
from safetensors.torch import load_file, save_file
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
from transformers import BertConfig, BertModel

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "distill", "fixtures", "bert")
MINILM = "/usr/share/datasets/all-minilm-l6-v2"
MAX_SEQ_LENGTH = 32
HIDDEN = 8

# the long one is over 256 word pieces, so it is truncated by the tiny model (32) and by
# all-MiniLM-L6-v2 (256) alike
LONG = " ".join(
    [
        "Knowledge distillation trains a small student network to imitate a larger teacher,",
        "matching its softened output distribution or its intermediate representations,",
        "so that the student keeps most of the teacher's accuracy at a fraction of the cost.",
    ]
    * 6
)
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world! How's it going? (Fine, thanks... really 🙂)",
    "KNOWLEDGE DISTILLATION COMPRESSES LARGE MODELS INTO SMALL ONES",
    "Un café au lait, s'il vous plaît, et une crème brûlée.",
    "Sentence embeddings map variable-length text to fixed-size vectors, so that semantically "
    "similar sentences end up close together under cosine similarity.",
    LONG,
]


def versions():
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def tiny_config():
    config = BertConfig(
        vocab_size=30522,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
        hidden_act="gelu",
    )
    config.architectures = ["BertModel"]
    return config


def tiny_model():
    torch.manual_seed(0)
    model = BertModel(tiny_config(), add_pooling_layer=True)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.normal_(0.0, 0.1)
            elif ".attention.self.query." in name or ".attention.self.key." in name:
                p.normal_(0.0, 0.5)
            else:
                p.normal_(0.0, 0.3)
    return model.float().eval()


def token_ids(features):
    """The unpadded input ids of each sentence in a preprocessed batch."""
    ids, mask = features["input_ids"], features["attention_mask"]
    return [[int(t) for t, m in zip(row, mrow) if m] for row, mrow in zip(ids.tolist(), mask.tolist())]


def floats(t):
    return [float(x) for x in t.reshape(-1).tolist()]


def raw_tokenizer_ids(path, max_len):
    """The ids tokenizers alone gives from tokenizer.json with its own truncation (128) and
    fixed padding (128) replaced by truncation at max_len and no padding."""
    tok = tokenizers.Tokenizer.from_file(path)
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    return [enc.ids for enc in tok.encode_batch(SENTENCES)]


def encode(st):
    """Normalised embeddings (one batch, padded), and per sentence (batch of one, no padding)
    the token ids, unnormalised mean pooling and last hidden states."""
    batched = st.encode(SENTENCES, batch_size=len(SENTENCES), convert_to_tensor=True,
                        normalize_embeddings=False, show_progress_bar=False)
    ids, pooled, hidden, normed = [], [], [], []
    for s in SENTENCES:
        features = st.preprocess([s])
        ids.extend(token_ids(features))
        with torch.no_grad():
            features = st[0](features)
            hidden.append(features["token_embeddings"][0].clone())
            features = st[1](features)
            pooled.append(features["sentence_embedding"][0].clone())
            features = st[2](features)
            normed.append(features["sentence_embedding"][0].clone())
    normed = torch.stack(normed)
    err = (batched - normed).abs().max().item()
    return ids, batched, normed, pooled, hidden, err


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    out = args.out
    os.makedirs(out, exist_ok=True)
    tokenizer_src = os.path.join(MINILM, "tokenizer.json")
    if not os.path.exists(tokenizer_src):
        raise SystemExit(f"{tokenizer_src} is missing (scripts/fetch-data.sh minilm installs it)")

    model = tiny_model()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(out, "model.safetensors"))
    os.chmod(os.path.join(out, "model.safetensors"), 0o644)  # save_file creates it 0600
    model.config.save_pretrained(out)
    shutil.copyfile(tokenizer_src, os.path.join(out, "tokenizer.json"))
    print(f"model.safetensors: {len(state)} tensors, position_ids in it: {'embeddings.position_ids' in state}")

    with tempfile.TemporaryDirectory() as tmp:
        # the committed files, plus the tokenizer's side files so that transformers reads the same
        # BertTokenizer settings the real model folder gives it
        for f in ["model.safetensors", "config.json", "tokenizer.json"]:
            shutil.copyfile(os.path.join(out, f), os.path.join(tmp, f))
        for f in ["tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]:
            if os.path.exists(os.path.join(MINILM, f)):
                shutil.copyfile(os.path.join(MINILM, f), os.path.join(tmp, f))
        transformer = Transformer(tmp, max_seq_length=MAX_SEQ_LENGTH,
                                  model_kwargs={"local_files_only": True},
                                  processor_kwargs={"local_files_only": True})
        st = SentenceTransformer(
            modules=[transformer, Pooling(HIDDEN, pooling_mode="mean"), Normalize()], device="cpu"
        ).eval()
        loaded = st[0].auto_model.state_dict()
        for k, v in state.items():
            assert torch.equal(loaded[k], v), f"{k} differs after loading through sentence-transformers"
        # which inputs reach BertModel.forward (sentence-transformers calls model.forward itself,
        # past any module hook, so wrap it)
        seen = {}
        bert = st[0].auto_model
        forward = bert.forward

        def spy(*a, **kw):
            seen.update({k: v for k, v in kw.items() if torch.is_tensor(v)})
            return forward(*a, **kw)

        bert.forward = spy
        ids, batched, normed, pooled, hidden, err = encode(st)
        del bert.forward
        assert not seen.get("token_type_ids", torch.zeros(1)).any(), "non-zero token_type_ids"
        raw = raw_tokenizer_ids(os.path.join(out, "tokenizer.json"), MAX_SEQ_LENGTH)
        assert raw == ids, "tokenizers alone gives other ids than sentence-transformers"
        print(f"tiny: max_seq_length {st.max_seq_length}, attention {st[0].auto_model.config._attn_implementation}, "
              f"forward inputs {sorted(seen)}, lengths {[len(i) for i in ids]}, "
              f"batched vs single max |diff| {err:.2e}")
        with open(os.path.join(out, "embeddings.json"), "w") as f:
            json.dump(
                {
                    "model": "tiny random BertModel (see tools/gen_bert_fixtures.py)",
                    "versions": versions(),
                    "pooling": "mean",
                    "normalize": True,
                    "max_seq_length": st.max_seq_length,
                    "hidden_size": HIDDEN,
                    "position_ids_in_safetensors": "embeddings.position_ids" in state,
                    "forward_inputs": sorted(seen),
                    "sentences": SENTENCES,
                    "token_ids": ids,
                    # one sentence per forward pass (no padding)
                    "embeddings": [floats(e) for e in normed],
                    "embeddings_unnormalized": [floats(e) for e in pooled],
                    # what encode() gives for the whole list in one padded batch
                    "embeddings_batched": [floats(e) for e in batched],
                    "last_hidden_state_0": {"shape": list(hidden[0].shape), "data": floats(hidden[0])},
                },
                f,
                indent=1,
            )

    if os.path.isdir(MINILM):
        st = SentenceTransformer(MINILM, device="cpu", local_files_only=True).eval()
        ids, batched, normed, _, _, err = encode(st)
        raw = raw_tokenizer_ids(tokenizer_src, st.max_seq_length)
        assert raw == ids, "tokenizers alone gives other ids than sentence-transformers (MiniLM)"
        print(f"minilm: max_seq_length {st.max_seq_length}, lengths {[len(i) for i in ids]}, "
              f"batched vs single max |diff| {err:.2e}")
        with open(os.path.join(out, "minilm.json"), "w") as f:
            json.dump(
                {
                    "model": "sentence-transformers/all-MiniLM-L6-v2",
                    "versions": versions(),
                    "max_seq_length": st.max_seq_length,
                    "sentences": SENTENCES,
                    "token_ids": ids,
                    "embeddings": [floats(e) for e in normed],
                },
                f,
            )


if __name__ == "__main__":
    main()
