"""Chatterbox-Turbo's T3 speech-token decoding for many requests in one autoregressive loop.

chatterbox-tts's `T3.inference_turbo` decodes one text at a time: a forward pass of its GPT-2 backbone over the
prompt (voice conditioning, text, start-of-speech token), then one forward pass per speech token on the KV cache,
each token drawn after the library's logits processors (temperature, top-k, top-p, repetition penalty). On a GPU
that loop is bound by per-token launches, not by compute, so several requests decoded as one batch cost about what
one costs. `decode_batch` runs the same modules, with the same weights, in the same order, for a batch of requests:

- prompts of different lengths (voices' conditioning and texts differ) are left-padded to the longest, with an
  attention mask and each row's own position ids (GPT-2's learned positions count from the row's first real token,
  as they do alone); a batch whose prompts are all one length runs without a mask, exactly the library's calls;
- one batched KV cache; a row that ends (its stop token, its token limit, its cancellation) leaves the batch: its
  rows of the cache, mask and positions are dropped, and the others go on;
- each row has its own sampling settings (the library's processors, applied to the rows that share settings at
  once) and its own random generator, so a request draws the same tokens alone or in any batch (up to float
  rounding of the batched matrix products: greedy decoding gives the same tokens; one request alone gives exactly
  the library's tokens under the same seed);
- the stop rules are the library's: a stop token ends a row from the second token on, a row ends after
  `max_tokens + 1` tokens, a row whose processed logits are all -inf ends, and a trailing stop token is removed.

Calls are serialised by the engine's `Batcher` (engines/batching.py); nothing is stored on the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engines.base import CancelledByClient, CancelToken


@dataclass(frozen=True)
class Sampling:
    """One request's speech-token sampling (chatterbox-tts's `generate` defaults). `top_k=1` is greedy."""

    temperature: float = 0.8
    top_k: int = 1000
    top_p: float = 0.95
    repetition_penalty: float = 1.2

    def processors(self) -> Any:
        """The library's processors for these settings, in `inference_turbo`'s order."""
        from transformers.generation.logits_process import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        processors = LogitsProcessorList()
        if self.temperature > 0 and self.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(self.temperature))
        if self.top_k > 0:
            processors.append(TopKLogitsWarper(self.top_k))
        if self.top_p < 1.0:
            processors.append(TopPLogitsWarper(self.top_p))
        if self.repetition_penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(self.repetition_penalty))
        return processors


@dataclass(eq=False)
class T3Request:
    """One text to decode: its tokens [1, T] (the model's device), its voice's `T3Cond`, its sampling, its token
    limit (as `inference_turbo`'s `max_gen_len`: at most `max_tokens + 1` tokens), its random generator (a
    `torch.Generator` on the model's device; None draws from torch's global generator, as the library does) and its
    cancel token (checked before every step: a cancelled row leaves the batch and gets `CancelledByClient`)."""

    text_tokens: Any
    cond: Any
    sampling: Sampling = field(default_factory=Sampling)
    max_tokens: int = 1000
    generator: Any = None
    cancel: CancelToken | None = None


class _Rows:
    """The rows still decoding: which request each is (row order is the backbone's order of its live rows)."""

    def __init__(self, torch: Any, requests: Sequence[T3Request]):
        self.t = torch
        self.index = list(range(len(requests)))  # request index of each row

    def keep(self, rows: list[int], backbone: Any, *tensors: Any) -> list[Any]:
        """Keep only `rows` (row numbers, ascending) in the backbone and in `tensors`."""
        if len(rows) == len(self.index):
            return list(tensors)
        select = self.t.tensor(rows, device=tensors[0].device if tensors else None)
        backbone.keep(rows, select)
        self.index = [self.index[r] for r in rows]
        return [x[select] for x in tensors]


class DynamicBackbone:
    """T3's GPT-2 on the library's growing KV cache (`DynamicCache`), as `inference_turbo` runs it: a row that ends
    leaves the cache, so each step computes only the live rows."""

    def __init__(self, torch: Any, t3: Any):
        self.t, self.t3 = torch, t3
        self.cache: Any = None
        self.mask: Any = None  # [rows, seen] 1 on real tokens (None: no row was padded)
        self.positions: Any = None  # [rows] the next token's position id (with a mask)

    def prefill(self, x: Any, lengths: list[int]) -> Any:
        """The left-padded prompts [rows, width, dim] (`lengths`: each row's real tokens): each row's last logits."""
        torch, t3 = self.t, self.t3
        width = x.shape[1]
        if min(lengths) == width:
            out = t3.tfmr(inputs_embeds=x, use_cache=True)
        else:
            mask = torch.zeros(len(lengths), width, dtype=torch.long, device=x.device)
            for i, n in enumerate(lengths):
                mask[i, width - n:] = 1
            position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
            out = t3.tfmr(inputs_embeds=x, attention_mask=mask, position_ids=position_ids, use_cache=True)
            self.mask, self.positions = mask, torch.tensor(lengths, device=x.device)
        self.cache = out.past_key_values
        return t3.speech_head(out[0][:, -1:])[:, -1, :]

    def step(self, embeds: Any) -> Any:
        """One token per live row ([rows, 1, dim]): each row's next logits."""
        t3 = self.t3
        if self.mask is None:
            out = t3.tfmr(inputs_embeds=embeds, past_key_values=self.cache, use_cache=True)
        else:
            self.mask = self.t.cat([self.mask, self.mask.new_ones(embeds.shape[0], 1)], dim=1)
            out = t3.tfmr(inputs_embeds=embeds, past_key_values=self.cache, attention_mask=self.mask,
                          position_ids=self.positions[:, None], use_cache=True)
            self.positions = self.positions + 1
        self.cache = out.past_key_values
        return t3.speech_head(out[0])[:, -1, :]

    def keep(self, rows: list[int], select: Any) -> None:
        self.cache.batch_select_indices(select)
        if self.mask is not None:
            self.mask, self.positions = self.mask[select], self.positions[select]


def _process(torch: Any, requests: Sequence[T3Request], rows: _Rows, history: Any, logits: Any,
             processors: dict[Sampling, Any]) -> Any:
    """Each row's logits through its own request's processors (rows sharing settings at once)."""
    groups: dict[Sampling, list[int]] = {}
    for row, i in enumerate(rows.index):
        groups.setdefault(requests[i].sampling, []).append(row)
    if len(groups) == 1:
        (sampling,) = groups
        return processors[sampling](history, logits)
    scores = torch.empty_like(logits)
    for sampling, members in groups.items():
        select = torch.tensor(members, device=logits.device)
        scores[select] = processors[sampling](history[select], logits[select])
    return scores


def _prompt(torch: Any, t3: Any, request: T3Request) -> Any:
    """A request's prompt embeddings [width, dim], as `inference_turbo` builds it: conditioning, text,
    start-of-speech."""
    start = t3.hp.start_speech_token * torch.ones_like(request.text_tokens[:, :1])
    embeds, _ = t3.prepare_input_embeds(t3_cond=request.cond, text_tokens=request.text_tokens, speech_tokens=start,
                                        cfg_weight=0.0)
    return embeds[0]


def prompt_width(torch: Any, t3: Any, request: T3Request) -> int:
    """How many positions a request's prompt takes."""
    with torch.inference_mode():
        return int(_prompt(torch, t3, request).shape[0])


def decode_batch(torch: Any, t3: Any, requests: Sequence[T3Request], static: Any = None) -> list[Any]:
    """Each request's speech tokens ([1, n] long, as `T3.inference_turbo` returns them), or the `CancelledByClient`
    of a request cancelled on the way, in order. `t3`: a loaded Turbo/Nano `T3` (GPT-2 backbone). `static`: a
    `StaticT3Pool` (engines/chatterbox_static.py) to decode on a static KV cache (and a CUDA graph) instead of the
    library's growing cache."""
    with torch.inference_mode():
        return _decode(torch, t3, requests, static)


def _decode(torch: Any, t3: Any, requests: Sequence[T3Request], static: Any) -> list[Any]:
    hp = t3.hp
    results: list[Any] = [None] * len(requests)
    tokens: list[list[int]] = [[] for _ in requests]
    processors = {r.sampling: r.sampling.processors() for r in requests}

    prompts = [_prompt(torch, t3, request) for request in requests]
    lengths = [p.shape[0] for p in prompts]
    width = max(lengths)
    device = prompts[0].device
    x = prompts[0].new_zeros(len(prompts), width, prompts[0].shape[-1])
    for i, prompt in enumerate(prompts):
        x[i, width - lengths[i]:] = prompt  # left-padded: every row's last token is its start-of-speech
    rows = _Rows(torch, requests)
    if static is None:
        backbone: Any = DynamicBackbone(torch, t3)
    else:  # a row feeds at most max_tokens tokens after its prompt
        backbone = static.take(len(requests), width + max(r.max_tokens for r in requests) + 1)
    logits = backbone.prefill(x, lengths)
    # The repetition penalty's history: the start token for the first draw, then the row's own tokens.
    history = hp.start_speech_token * torch.ones(len(requests), 1, dtype=torch.long, device=device)
    step = 0
    while True:
        scores = _process(torch, requests, rows, history, logits, processors)
        probs = torch.softmax(scores, dim=-1)
        if step > 0:  # a row whose logits are all -inf ends there, drawing nothing (it draws from anything here)
            ended = torch.all(scores == -float("inf"), dim=-1)
            probs = torch.where(ended[:, None], torch.ones_like(probs), probs)
        drawn = [torch.multinomial(probs[row:row + 1], num_samples=1, generator=requests[i].generator)
                 for row, i in enumerate(rows.index)]
        next_tokens = torch.cat(drawn)  # [rows, 1]
        # One transfer a step: the drawn tokens and which rows ended.
        host = (torch.cat([next_tokens.view(-1), ended.long()]) if step > 0 else next_tokens.view(-1)).tolist()
        drawn_tokens, ended = host[: len(rows.index)], host[len(rows.index):] or [0] * len(rows.index)
        keep = []
        for row, (i, token) in enumerate(zip(rows.index, drawn_tokens)):
            if ended[row]:
                results[i] = tokens[i]
                continue
            tokens[i].append(token)
            request = requests[i]
            if (step > 0 and token == hp.stop_speech_token) or step >= request.max_tokens:
                results[i] = tokens[i]
            elif request.cancel is not None and request.cancel.cancelled:
                results[i] = CancelledByClient("the request was cancelled while its speech tokens were decoded")
            else:
                keep.append(row)
        if not keep:
            break
        history, next_tokens = rows.keep(keep, backbone, torch.cat([history, next_tokens], dim=1) if step > 0
                                         else next_tokens, next_tokens)
        logits = backbone.step(t3.speech_emb(next_tokens))
        step += 1
    for i, result in enumerate(results):
        if isinstance(result, list):
            if result and result[-1] == hp.stop_speech_token:  # the library removes a trailing stop token
                result = result[:-1]
            results[i] = torch.tensor([result], dtype=torch.long, device=device)
    return results
