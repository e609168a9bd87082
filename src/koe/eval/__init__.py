"""Zero-shot evaluation of speech-text LMs on koe benchmarks (`koe eval`).

    koe eval runs/tiny/model bench=[bench] unit_tokenizer=runs/tiny/units
    from koe.eval.scoring import item_score, bootstrap_ci, binomial_pvalue     # the rules, as pure functions

Rules and formats: docs/evaluation.md.
"""
