"""Kokoro's fixed-shape part — ALBERT and its projection — at bucketed shapes, captured as CUDA graphs.

On a GPU, Kokoro-82M is bound by Python's per-operation launches (issue 19: 16 concurrent requests gave no more
audio per second than 4). Most of its forward pass cannot be captured as it stands: the duration encoder's and the
predictor's LSTMs run packed at each phrase's own length (lengths read on the host), the predicted durations set
the number of frames, and the decoder's shapes follow the frames. The one part whose shapes depend only on the
padded batch is PL-BERT (an ALBERT: embeddings and its shared layers) and `bert_encoder`, which `kokoro_batch`
runs first. `AlbertBucket` holds that part for `rows` phrases of up to `width` tokens in fixed buffers:

- the token ids, zero past each phrase's end and in spare rows;
- a 4D additive mask [rows, 1, 1, width] that the model takes as it is (no mask building, no host sync): each
  phrase attends to its own tokens only, a spare row to its first position, so every row stays finite;
- the output [rows, width, hidden], of which the caller reads its phrases' rows and the batch's width.

A phrase's tokens keep their positions, so padding a batch to its bucket leaves each real token's output what
it is at the batch's own width (up to float rounding). `AlbertGraphs` keeps one bucket per (rows, width): rows a
power of two up to the engine's batch size, width a multiple of `WIDTH_STEP` up to the model's 512 positions;
`prepare` (warm-up) captures them all. Without CUDA graphs (`graph=False`, any device) the same bucketed pass runs
eagerly: the tests check that path on CPU. The capture itself (`AlbertBucket._capture`) runs only on CUDA.
"""

from __future__ import annotations

from typing import Any

from engines.cuda_graphs import capture, row_buckets, rows_bucket

WIDTH_STEP = 32


class AlbertBucket:
    """ALBERT + `bert_encoder` for `rows` x `width` tokens in fixed buffers (and on CUDA, its captured graph). Used
    by one batch at a time (the engine's `Batcher` serialises them)."""

    def __init__(self, torch: Any, model: Any, rows: int, width: int, *, graph: bool, pool: Any = None):
        self.t, self.m, self.rows, self.width = torch, model, rows, width
        weight = model.bert_encoder.weight
        self.floor = torch.finfo(weight.dtype).min
        self.ids = torch.zeros(rows, width, dtype=torch.long, device=weight.device)
        self.mask = weight.new_full((rows, 1, 1, width), self.floor)
        self.out: Any = None
        self.graph: Any = None
        if graph:
            self._capture(pool)

    def _forward(self) -> Any:
        return self.m.bert_encoder(self.m.bert(self.ids, attention_mask=self.mask))

    def _capture(self, pool: Any) -> None:
        """Capture into the graphs' shared memory `pool` (the buffers' contents do not matter to the capture)."""
        self.mask[:, :, :, 0] = 0.0
        self.graph, self.out = capture(self.t, self.ids.device, self._forward, pool)

    def run(self, ids: Any, real: Any) -> Any:
        """`ids` [n, w] (n <= rows, w <= width) and `real` [n, w] (True on each phrase's tokens): the projected
        ALBERT features [n, w, hidden] (a copy: the buffers are the next batch's)."""
        n, w = ids.shape
        self.ids.zero_()
        self.ids[:n, :w] = ids
        self.mask.fill_(self.floor)
        self.mask[:n, 0, 0, :w] = self.t.where(real, 0.0, self.floor).to(self.mask.dtype)
        self.mask[n:, 0, 0, 0] = 0.0
        if self.graph is None:
            out = self._forward()
        else:
            self.graph.replay()
            out = self.out
        return out[:n, :w].clone()


class AlbertGraphs:
    """The `AlbertBucket`s of one Kokoro model, created on first use or by `prepare`. Their graphs share one memory
    pool (one batch runs at a time, and each copies its output out), captured largest first so the pool is sized
    once."""

    def __init__(self, torch: Any, model: Any, max_rows: int, *, graph: bool):
        self.t, self.m, self.max_rows, self.graph = torch, model, max_rows, graph
        self.max_width = int(model.bert.config.max_position_embeddings)
        self.buckets: dict[tuple[int, int], AlbertBucket] = {}
        self.pool = torch.cuda.graph_pool_handle() if graph else None

    def _make(self, key: tuple[int, int]) -> AlbertBucket:
        found = self.buckets[key] = AlbertBucket(self.t, self.m, *key, graph=self.graph, pool=self.pool)
        return found

    def bucket(self, rows: int, width: int) -> tuple[int, int] | None:
        """The bucket's (rows, width) for a batch, or None when the batch is wider than the model's positions."""
        if width > self.max_width:
            return None
        return rows_bucket(rows, self.max_rows), min(-(-width // WIDTH_STEP) * WIDTH_STEP, self.max_width)

    def run(self, ids: Any, real: Any) -> Any:
        """As `AlbertBucket.run`, in the batch's bucket (or eagerly at the batch's own shape when none fits)."""
        key = self.bucket(*ids.shape)
        if key is None:
            return self.m.bert_encoder(self.m.bert(ids, attention_mask=real.int()))
        found = self.buckets.get(key) or self._make(key)
        return found.run(ids, real)

    def prepare(self) -> int:
        """Create (and capture) every bucket, largest first, as warm-up does: no batch then captures on a request.
        Returns how many there are."""
        keys = {self.bucket(rows, width) for rows in row_buckets(self.max_rows)
                for width in range(WIDTH_STEP, self.max_width + 1, WIDTH_STEP)}
        with self.t.inference_mode():
            for key in sorted(keys - {None} - self.buckets.keys(), reverse=True):
                self._make(key)
        return len(self.buckets)
