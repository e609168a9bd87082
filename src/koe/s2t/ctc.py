"""The CTC head over the LLM vocabulary on the adapter output, and the frame shrinking it drives.

    logits = head(adapter_out)                                   # [batch, frames, vocab + 1], blank = vocab
    loss = ctc_loss(logits, lengths, [tokenizer.encode(t) for t in transcripts], blank)
    embeds, lengths = ctc_shrink(adapter_out, lengths, logits.argmax(-1), blank)

Speech runs at 25 adapter frames per second against ~3 text tokens per second; CTC (FIELD.md "EchoX" stage I) learns
where the tokens are, and shrinking keeps one vector per emitted token (the mean of its run of frames, blanks
dropped), so the LLM reads a sequence about as long as the transcript.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ctc_loss(logits: torch.Tensor, lengths: torch.Tensor, targets: list[list[int]], blank: int) -> torch.Tensor:
    """Mean CTC loss per target token; items whose targets cannot fit their frames contribute 0 (zero_infinity)."""
    flat = torch.tensor([t for seq in targets for t in seq], dtype=torch.long, device=logits.device)
    target_lengths = torch.tensor([len(seq) for seq in targets], dtype=torch.long, device=logits.device)
    log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # [frames, batch, classes]
    return F.ctc_loss(log_probs, flat, lengths.long(), target_lengths, blank=blank, reduction="mean",
                      zero_infinity=True)


def ctc_shrink(x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, blank: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean-pool each run of equal non-blank labels into one frame, drop blank frames.

    An item whose frames are all blank keeps every frame (an untrained head must not erase the speech).
    """
    pooled = []
    for b in range(x.shape[0]):
        n = int(lengths[b])
        lab = labels[b, :n]
        keep = lab != blank
        if not bool(keep.any()):
            pooled.append(x[b, :n])
            continue
        starts = torch.ones(n, dtype=torch.bool, device=x.device)
        starts[1:] = lab[1:] != lab[:-1]
        run = torch.cumsum(starts.long(), 0) - 1  # run index of every frame
        kept_runs = torch.unique(run[keep])
        sums = x.new_zeros(int(run[-1]) + 1, x.shape[-1]).index_add(0, run, x[b, :n])
        counts = torch.bincount(run, minlength=sums.shape[0]).clamp_min(1).to(x.dtype)
        pooled.append((sums / counts[:, None])[kept_runs])
    new_lengths = torch.tensor([p.shape[0] for p in pooled], device=x.device)
    out = x.new_zeros(len(pooled), int(new_lengths.max()), x.shape[-1])
    for b, p in enumerate(pooled):
        out[b, : p.shape[0]] = p
    return out, new_lengths
