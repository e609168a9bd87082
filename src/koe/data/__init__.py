"""Training sequences for speech-text LMs: the extended vocabulary, token shards and `koe data build`.

    koe data build units_dir=out/units manifest=out/manifest.jsonl text=[tiny/text.jsonl] \
        text_tokenizer=train:2000 out_dir=out/data

Public API: `koe.data.vocab` (SpeechVocab, extend_tokenizer, units_only_tokenizer), `koe.data.shards`
(TokenShardWriter, read_token_shards, TokenDataset, load_data_meta), `koe.data.text_tokenizer`
(train_text_tokenizer), `koe.data.interleave` (interleaving of aligned words and units). See docs/sequences.md.
"""
