"""koe.training: the training library below every stage (docs/architecture.md#layering).

    from koe.training.config import OptimConfig                      # the one optimiser config shape
    optimizer, frozen = build_adamw({"all": model.parameters()}, cfg.optim)          # koe.training.optim
    scheduler = build_scheduler(optimizer, cfg.optim, total_steps, frozen)           # koe.training.schedule
    grad_norm, lr = optimizer_step(accelerator, model, optimizer, scheduler, cfg.optim.grad_clip)
    save_checkpoint(accelerator, out_dir, step, state, keep=2)                       # koe.training.checkpoint

`config`, `schedule`, `optim`, `checkpoint`, `logger`, `throughput` (FLOPs, MFU) and `device` (the Accelerator) are
what the LM (`koe train`), SSL (`koe ssl`), phone-classifier and vocoder loops share, so they cannot drift apart.
It imports only koe.config, koe.stage and koe.seed (tests/core/test_layering.py). This `__init__` imports nothing,
so a config import stays free of torch.
"""
