"""Rows of every data-parallel worker, for ``--contrastive-gather`` and the shared negative queue.

Workers may hold different numbers of rows (an uneven last batch, fairseq's dummy batch, a batch
without pairs), so the counts are gathered first and every block is padded to the largest. The
gathered tensor carries gradient only through this worker's own block: every worker scores the
gathered rows, and fairseq's all-reduce of the gradients then sums each row's gradient from the
worker that owns it -- the gradient of one process holding the combined batch.
"""

from dataclasses import dataclass
from typing import List

import torch
import torch.distributed as dist
from fairseq.distributed import utils as distributed_utils


def data_parallel_world_size() -> int:
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return distributed_utils.get_data_parallel_world_size()


@dataclass
class Gathered:
    tensors: List[torch.Tensor]  # each [sum of rows, ...], this worker's block with its gradient
    start: int  # this worker's block: rows start:stop
    stop: int
    extras: torch.Tensor  # [world, E] the per-worker scalars passed in


def gather_rows(tensors: List[torch.Tensor], extras: torch.Tensor) -> Gathered:
    """All-gather row-aligned ``tensors`` (same first dimension; any dtypes) and one vector of
    per-worker scalars ``extras`` ``[E]`` (float64) over fairseq's data-parallel group."""
    group = distributed_utils.get_data_parallel_group()
    world = distributed_utils.get_data_parallel_world_size()
    rank = distributed_utils.get_data_parallel_rank()
    n = tensors[0].shape[0]
    device = tensors[0].device
    head = torch.cat([torch.tensor([float(n)], dtype=torch.float64, device=device), extras.to(device).double()])
    heads = [torch.empty_like(head) for _ in range(world)]
    dist.all_gather(heads, head, group=group)
    sizes = [int(h[0].item()) for h in heads]
    width = max(sizes)
    out = []
    for t in tensors:
        padded = t.new_zeros((width, *t.shape[1:]))
        padded[:n] = t.detach()
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous(), group=group)
        parts = [p[:s] for p, s in zip(parts, sizes)]
        parts[rank] = t  # the local block keeps its graph
        out.append(torch.cat(parts))
    start = sum(sizes[:rank])
    return Gathered(out, start, start + n, torch.stack(heads)[:, 1:])
