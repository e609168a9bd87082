"""koe.train: continued pretraining of a Hugging Face causal LM on packed koe token shards (`koe train`).

    koe train src/koe/configs/train/tiny_speech.yaml data_dir=runs/data out_dir=runs/train

The loop is koe.train.recipe.run_train; packing, loss, fused, optim (the LM's parameter groups) and distributed hold
the LM's own pieces; the optimiser config, schedule, optimiser step, checkpoints, logs and throughput/MFU come from
koe.training, model init and attention from koe.model. See docs/training.md.
"""
