"""Train a small byte-level BPE text tokenizer, for recipes that cannot download a pretrained LLM.

    tok = train_text_tokenizer((item.text for item in read_text_items("tiny/text.jsonl")), 2000, "out/tok")
    tok("the red dog").input_ids

The built-in tiny recipe pretrains a tiny text LM on TinySpeech text, so it needs a text tokenizer of its own. We use
the `tokenizers` library's byte-level BPE (GPT-2 style: no unknown characters, a leading space marks a word start)
and wrap it as a `PreTrainedTokenizerFast`, so the directory loads with `AutoTokenizer.from_pretrained` and behaves
exactly like a hub tokenizer everywhere else in koe (`koe.data.vocab.extend_tokenizer`, the trainer, generation).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

EOS_TOKEN = "</s>"
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"


def train_text_tokenizer(
    texts: Iterable[str], vocab_size: int, out_dir: str | Path | None = None, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train byte-level BPE on `texts`; save it to `out_dir` (when given) with save_pretrained and return it.

    `vocab_size` counts the 256 byte symbols and the three specials (`</s>` eos, `<pad>`, `<unk>`), so it must be at
    least 259; a corpus too small to fill it gives a smaller vocabulary. `<unk>` is never produced by a byte-level
    model but is set because some downstream code expects an unk token to exist.
    """
    if vocab_size < 259:
        raise ValueError(f"vocab_size={vocab_size}: a byte-level BPE needs at least 256 bytes + 3 special tokens")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS_TOKEN, PAD_TOKEN, UNK_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN, unk_token=UNK_TOKEN, bos_token=None
    )
    if out_dir is not None:
        fast.save_pretrained(str(out_dir))
    return fast
