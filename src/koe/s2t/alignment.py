"""Stage-I alignment terms between the speech path and the transcript (issue #14; docs/echox.md "Stage I").

    p_text = target_logits(llm(transcript twin).logits, twin_labels)         # teacher, no gradient
    l_imp = implicit_kl(target_logits(llm(speech).logits, labels), p_text)   # KL(p_text || p_speech)
    l_exp = explicit_cosine(adapter_out, lengths, [embed(ids) for ids in transcripts])

Implicit alignment (behaviour alignment, as BLSP / DiVA): the LLM should continue the same way whether it read the
speech or its transcript, so the text-input distribution over each target token is distilled into the speech path:
L_imp = mean over target positions t (eos included) of KL(p_text(.|t) || p_speech(.|t)).
Explicit alignment: the adapter output should live where the transcript's token embeddings live. The speech side
has one vector per adapter frame (or per CTC run) and the text side one per token, so the lengths differ; the
length-agnostic choice here is L_exp = mean over items of 1 - cos(mean_f a_f, mean_j e_j): the direction of the
pooled adapter output against that of the pooled transcript embeddings. Cosine leaves the scale free (adapter
outputs and embedding rows need not share a norm); pooling ignores order, so it is a coarse pull, not a per-token
alignment.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def target_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[N, vocab]: the logits that predict each labelled token (HF causal shift: position t predicts label t+1),
    item after item; two batches with the same targets give rows that pair up."""
    return logits[:, :-1][labels[:, 1:] != -100]


def implicit_kl(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(softmax(teacher) || softmax(student)), in fp32; the teacher carries no gradient.

    KL(p_text || p_speech) (not the reverse) is the distillation direction: the speech path is pulled to cover every
    continuation the text path gives mass to, as in a cross-entropy against the teacher's soft labels.
    """
    if student.shape != teacher.shape:
        raise ValueError(f"implicit alignment: student {tuple(student.shape)} != teacher {tuple(teacher.shape)} "
                         "(the two inputs must share their targets)")
    log_s, log_t = student.float().log_softmax(-1), teacher.detach().float().log_softmax(-1)
    return (log_t.exp() * (log_t - log_s)).sum(-1).mean()


def mean_pool(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[batch, dim]: the mean of each item's first `lengths[b]` frames (padding left out)."""
    mask = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None].to(x.device)).to(x.dtype)
    return (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)


def explicit_cosine(speech: torch.Tensor, lengths: torch.Tensor, text: list[torch.Tensor]) -> torch.Tensor:
    """Mean over items of 1 - cos(mean-pooled adapter output, mean-pooled transcript embeddings), in fp32."""
    pooled_text = torch.stack([t.float().mean(0) for t in text])
    return (1 - F.cosine_similarity(mean_pool(speech.float(), lengths), pooled_text, dim=-1)).mean()
