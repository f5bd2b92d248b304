"""What engines that run fixed-shape buckets as CUDA graphs share: the bucket sizes for a batch's rows, and the
capture of one bucket's forward pass (engines/chatterbox_static.py, engines/kokoro_graphs.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def rows_bucket(rows: int, max_rows: int) -> int:
    """The bucket for a batch of `rows`: the next power of two, at most `max_rows` (or `rows` itself above it)."""
    size = 1
    while size < rows:
        size *= 2
    return max(rows, min(size, max_rows))


def row_buckets(max_rows: int) -> list[int]:
    """Every rows bucket up to `max_rows`, smallest first: 1, 2, 4, ... and `max_rows`."""
    buckets = [1]
    while buckets[-1] < max_rows:
        buckets.append(rows_bucket(min(buckets[-1] * 2, max_rows), max_rows))
    return buckets


def capture(torch: Any, device: Any, forward: Callable[[], Any], pool: Any = None) -> tuple[Any, Any]:
    """`forward` warmed up twice on a side stream (so lazy allocations and kernel choices happen outside the
    capture), then captured: the `torch.cuda.CUDAGraph` and its output (static buffers `graph.replay()` refills).
    `pool`: a memory pool shared with other graphs that are never replayed at once. CUDA only."""
    stream = torch.cuda.Stream(device=device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(2):
            forward()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        out = forward()
    return graph, out
