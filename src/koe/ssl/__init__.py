"""Self-supervised speech encoders: HuBERT pretraining from scratch and speaker-disentangled fine-tuning.

    koe ssl pretrain data/manifest.jsonl out_dir=runs/hubert steps=2000
    koe ssl disentangle data/manifest.jsonl init=runs/hubert/final out_dir=runs/sd-hubert steps=1000
    koe units fit data/manifest.jsonl out_dir=tok/hubert-l3 features=hf:runs/hubert/final@3 k=100

Both commands write a plain Hugging Face HuBERT directory (out_dir/final) that koe.units loads unchanged. Entry
points: koe.ssl.pretrain.run_pretrain, koe.ssl.disentangle.run_disentangle; speaker perturbation:
koe.ssl.perturb.perturb_speaker. See docs/ssl.md.
"""
