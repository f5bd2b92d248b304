"""T3's decode step at fixed shapes: a static KV cache, and on CUDA the step captured once as a CUDA graph.

On a GPU, Turbo's T3 (a 24-layer GPT-2) is bound by launches, not compute: a speech token cost ~8 ms of Python and
kernel launches on an H200 (122 tokens/s, issue 19). A CUDA graph replays a captured step's kernels with one launch,
but every tensor it touches must keep its address and shape. `StaticT3` holds a batch of `rows` rows and `length`
positions in fixed buffers:

- the KV cache is transformers' `StaticCache`, written in place at `cache_position`;
- the attention mask is a 4D additive mask [rows, 1, 1, length] that the model takes as it is: the step builds no
  mask and makes no host sync. Prefill runs eagerly with its own [rows, 1, width, length] mask (causal, and each
  row's left padding: a padding position attends only to itself, so it stays finite and no real token sees it);
- a row that ends stays in the buffers and decodes tokens nobody reads, as do a bucket's spare rows (copies of row
  0): a step costs the same whatever number of rows are still live;
- each row's position ids count from its first real token, as the library's do for the row alone.

`StaticT3Pool` keeps one `StaticT3` per (rows, length) bucket — rows a power of two up to the engine's batch size,
length a multiple of `LENGTH_STEP` — so a graph is captured once per bucket and replayed by every batch that fits.
Without CUDA graphs (`graph=False`: any device) the same fixed-shape step runs eagerly; the tests check that path
against the library's loop on CPU. The capture itself (`StaticT3._capture`) runs only on CUDA.

The cost of fixed shapes: every step attends over all `length` positions of every row, so the KV cache read per
step is rows x length x layers x 2 x hidden x 4 bytes (fp32; 302 MB a row for Turbo at length 1536) against the
growing cache's live part only. Whether that trade pays is a GPU measurement (`bench/gpu.py chatterbox --t3-step`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from engines.cuda_graphs import capture, row_buckets, rows_bucket

LENGTH_STEP = 256


class StaticT3:
    """One (rows, length) bucket of T3: its static cache, step buffers, and (on CUDA) the step's captured graph.
    Used by one batch at a time (the engine's `Batcher` serialises them)."""

    def __init__(self, torch: Any, t3: Any, rows: int, length: int, *, graph: bool):
        from transformers import StaticCache

        self.t, self.t3, self.rows, self.length = torch, t3, rows, length
        weight = t3.speech_emb.weight
        self.floor = torch.finfo(weight.dtype).min
        self.cache = StaticCache(config=t3.cfg, max_cache_len=length)
        self.embeds = weight.new_zeros(rows, 1, weight.shape[1])
        self.positions = torch.zeros(rows, 1, dtype=torch.long, device=weight.device)
        self.cache_position = torch.zeros(1, dtype=torch.long, device=weight.device)
        self.mask = weight.new_full((rows, 1, 1, length), self.floor)
        self.live: Any = None  # the live rows' slots, in the decode loop's row order
        self.at = 0  # the position the next step writes
        self.graph: Any = None
        self.logits: Any = None  # the graph's output buffer
        if graph:
            self._capture()

    def _forward(self) -> Any:
        out = self.t3.tfmr(inputs_embeds=self.embeds, attention_mask=self.mask, position_ids=self.positions,
                           cache_position=self.cache_position, past_key_values=self.cache, use_cache=True)
        return self.t3.speech_head(out[0])[:, -1, :]

    def _capture(self) -> None:
        """Capture the step. Its warm-up writes land in the last cache slot, which a real step rewrites before it
        reads it (and the mask hides it until then)."""
        self.cache_position.fill_(self.length - 1)
        self.graph, self.logits = capture(self.t, self.embeds.device, self._forward)

    def prefill(self, x: Any, lengths: list[int]) -> Any:
        """The left-padded prompts [n, width, dim] (n <= rows; `lengths`: each row's real tokens) into the cache:
        each row's last logits [n, vocab]."""
        torch = self.t
        n, width, _ = x.shape
        if n > self.rows or width >= self.length:
            raise ValueError(f"a batch of {n} prompts {width} wide does not fit a T3 bucket of {self.rows} rows "
                             f"and {self.length} positions")
        lengths = lengths + [lengths[0]] * (self.rows - n)
        if n < self.rows:
            x = torch.cat([x, x[:1].expand(self.rows - n, -1, -1)])
        device = x.device
        key = torch.arange(self.length, device=device)
        query = torch.arange(width, device=device)
        real = torch.stack([(key >= width - k) & (key < width) for k in lengths])  # [rows, length]
        allowed = real[:, None, :] & (key[None, None, :] <= query[None, :, None])
        allowed |= (key[None, :] == query[:, None])[None]  # a padding position attends to itself
        mask = torch.where(allowed, 0.0, self.floor).to(x.dtype)[:, None]
        positions = (real[:, :width].long().cumsum(-1) - 1).clamp(min=0)
        out = self.t3.tfmr(inputs_embeds=x, attention_mask=mask, position_ids=positions,
                           cache_position=query, past_key_values=self.cache, use_cache=True)
        logits = self.t3.speech_head(out[0][:, -1:])[:, -1, :]
        self.mask.copy_(torch.where(real, 0.0, self.floor).to(x.dtype)[:, None, None, :])
        self.positions.copy_(torch.tensor(lengths, device=device)[:, None] - 1)
        self.live = torch.arange(n, device=device)
        self.at = width
        return logits[:n]

    def step(self, embeds: Any) -> Any:
        """One token per live row ([live, 1, dim]): each live row's next logits."""
        if self.at >= self.length:
            raise ValueError(f"T3 decoded past its bucket's {self.length} positions")
        self.embeds[self.live] = embeds
        self.mask[:, :, :, self.at] = 0.0
        self.positions += 1
        self.cache_position.fill_(self.at)
        self.at += 1
        if self.graph is None:
            logits = self._forward()
        else:
            self.graph.replay()
            logits = self.logits
        return logits[self.live]

    def keep(self, rows: list[int], select: Any) -> None:
        self.live = self.live[select]


class StaticT3Pool:
    """The `StaticT3` buckets of one engine, created on first use (or by `prepare`), the least recently used
    dropped beyond `keep`."""

    def __init__(self, torch: Any, t3: Any, max_rows: int, *, graph: bool, keep: int = 8):
        self.t, self.t3, self.max_rows, self.graph, self.max_kept = torch, t3, max_rows, graph, keep
        self.buckets: OrderedDict[tuple[int, int], StaticT3] = OrderedDict()

    def bucket(self, rows: int, length: int) -> tuple[int, int]:
        return rows_bucket(rows, self.max_rows), -(-length // LENGTH_STEP) * LENGTH_STEP

    def take(self, rows: int, length: int) -> StaticT3:
        """The bucket for a batch of `rows` prompts needing `length` positions (prompt width + tokens)."""
        key = self.bucket(rows, length)
        found = self.buckets.get(key)
        if found is None:
            found = self.buckets[key] = StaticT3(self.t, self.t3, *key, graph=self.graph)
            while len(self.buckets) > self.max_kept:
                self.buckets.popitem(last=False)
        self.buckets.move_to_end(key)
        return found

    def prepare(self, length: int) -> list[tuple[int, int]]:
        """Create (and capture) every rows bucket at `length`, as warm-up does: the first batches of each size then
        find their graph. Returns the buckets' keys."""
        with self.t.inference_mode():
            for rows in row_buckets(self.max_rows):
                self.take(rows, length)
        return [self.bucket(rows, length) for rows in row_buckets(self.max_rows)]
