"""Zero-shot evaluation of speech-text LMs on koe benchmarks (`koe eval`).

    koe eval runs/tiny/interleaved/final bench=[bench]     # the model reads its own unit tokenizer
    from koe.eval.scoring import item_score, bootstrap_ci, binomial_pvalue     # the rules, as pure functions

Rules and formats: docs/evaluation.md.
"""
