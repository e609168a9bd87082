"""EchoX (arXiv 2509.09174) in miniature: unit language, T2C (stage II), echo training (stage III), streaming.

    koe echox t2c qa=runs/echox/qa.jsonl s2t=runs/echox/s2t_sft/final out_dir=runs/echox/t2c
    koe echox echo qa=runs/echox/qa.jsonl s2t=runs/echox/s2t_sft/final t2c=runs/echox/t2c/final out_dir=e
    koe echox eval qa=runs/echox/qa.jsonl vocoder=runs/echox/vocoder systems='{echox: {echo: e/final}}'
    koe run echox                                  # the whole CPU recipe (src/koe/recipes/echox.yaml)

See docs/echox.md for the formulas (koe.echox.losses, koe.echox.streaming) and the deviations from the paper.
"""
