"""koe.train: continued pretraining of a Hugging Face causal LM on packed koe token shards (`koe train`).

    koe train src/koe/configs/train/tiny_speech.yaml data_dir=runs/data out_dir=runs/train

The loop is koe.train.recipe.run_train; packing, loss, schedule, optim, metrics, checkpoint and logger hold the
pieces it shares with tests and benchmarks. See docs/training.md.
"""
