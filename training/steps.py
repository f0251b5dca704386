"""One optimisation step per batch, eagerly or replayed from a CUDA graph.

A step is: the batch rows of the training set (held on the device), the regime's region
around them, the regime's loss (sampler included), backward, the optimizer step, the regime's
:meth:`~robustprop.training.regimes.Regime.constrain` (the lipschitz projection), and the
batch statistics added to :attr:`StepRunner.totals` (on the device: nothing waits for the GPU
until someone reads them).

On CUDA with ``graphs=True`` the step for the full batch size is captured once in a CUDA
graph and replayed: the paper's constraint step is ~50 tiny PGD iterations, so launching each
kernel from Python costs far more than running it. The captured step is the same Python code
as the eager one, with one difference in where the region's bounds come from: a region over
the whole training set is computed once and its rows are gathered (the bounds are per row, so
the values are those of a region built on the batch). The sampling generator is registered
with the graph, so every replay draws fresh random starts. :data:`WARMUP` steps run eagerly on
a side stream first (real steps, as CUDA graphs require); partial batches run eagerly. Regimes
that synchronise with the host (``Regime.capturable`` false: the constraint regime with
``reference="label"``) run eagerly. If capture fails, the runner restores the state from before
the attempt, logs why, and stays eager.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Final

import torch
from torch import Tensor, nn

from robustprop.properties import Region
from robustprop.training.regimes import STATS, Regime

__all__ = ["WARMUP", "StepRunner"]

logger = logging.getLogger(__name__)

WARMUP: Final = 3


class StepRunner:
    """Runs training steps of ``regime`` on batches of ``(x, y)`` given by row indices.

    Shape:
        x: ``(N, n)`` float on the model's device; y: ``(N,)`` int64 on the same device;
        totals: ``(len(STATS),)`` float64 sums since the last :meth:`reset_totals`.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        regime: Regime,
        x: Tensor,
        y: Tensor,
        generator: torch.Generator,
        *,
        batch_size: int,
        graphs: bool = False,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.regime = regime
        self.x = x
        self.y = y
        self.generator = generator
        self.batch_size = batch_size
        self.totals = torch.zeros(len(STATS), dtype=torch.float64, device=x.device)
        self._graphs = graphs and x.device.type == "cuda" and regime.capturable
        self._warm = 0
        self._graph: Any = None  # torch.cuda.CUDAGraph once captured
        self._static: tuple[Any, ...] = ()  # tensors the graph reads and writes; keep alive
        self._full_region: Region | None = None

    @property
    def mode(self) -> str:
        """``"cuda-graph"`` once a graph is captured (or will be), else ``"eager"``."""
        return "cuda-graph" if self._graphs else "eager"

    def reset_totals(self) -> None:
        self.totals.zero_()

    def step(self, idx: Tensor) -> None:
        """One optimisation step on the rows ``idx`` (int64 on the data's device)."""
        full = len(idx) == self.batch_size
        if self._graph is not None and full:
            self._static[0].copy_(idx)
            self._graph.replay()
        elif not self._graphs or self._graph is not None or not full:
            self._eager(idx)
        elif self._warm < WARMUP:
            self._warmup(idx)
        else:
            self._capture(idx)

    def _eager(self, idx: Tensor) -> None:
        x = self.x.index_select(0, idx)
        y = self.y.index_select(0, idx)
        self.optimizer.zero_grad(set_to_none=True)
        out = self.regime.batch(self.model, x, y, self.regime.region(x), self.generator)
        torch.autograd.backward(out.loss)
        self.optimizer.step()
        self.regime.constrain(self.model)
        self.totals.add_(out.stats)

    def _warmup(self, idx: Tensor) -> None:
        side = torch.cuda.Stream(device=self.x.device)  # type: ignore[no-untyped-call]  # untyped in torch's stubs
        side.wait_stream(torch.cuda.current_stream(self.x.device))
        with torch.cuda.stream(side):
            self._eager(idx)
        torch.cuda.current_stream(self.x.device).wait_stream(side)
        self._warm += 1

    def _snapshot(self) -> tuple[dict[str, Tensor], dict[str, Any], Tensor, Tensor]:
        return (
            {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            copy.deepcopy(self.optimizer.state_dict()),
            self.generator.get_state(),
            self.totals.clone(),
        )

    def _restore(self, snap: tuple[dict[str, Tensor], dict[str, Any], Tensor, Tensor]) -> None:
        model_state, optimizer_state, rng, totals = snap
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(optimizer_state)
        self.generator.set_state(rng)
        self.totals.copy_(totals)

    def _capture(self, idx: Tensor) -> None:
        """Capture the step for batches of ``len(idx)`` rows, then run it on ``idx``."""
        snap = self._snapshot()
        try:
            if self._full_region is None:
                self._full_region = self.regime.region(self.x)
            full = self._full_region
            static_idx = idx.clone()
            x = self.x.index_select(0, static_idx)
            y = self.y.index_select(0, static_idx)
            region = self.regime.region(x)  # validated once; its tensors are refilled in place
            graph = torch.cuda.CUDAGraph()
            graph.register_generator_state(self.generator)
            self.optimizer.zero_grad(set_to_none=True)
            with torch.cuda.graph(graph):
                torch.index_select(self.x, 0, static_idx, out=x)
                torch.index_select(self.y, 0, static_idx, out=y)
                if region is not None and full is not None:
                    torch.index_select(full.lower, 0, static_idx, out=region.lower)
                    torch.index_select(full.upper, 0, static_idx, out=region.upper)
                out = self.regime.batch(self.model, x, y, region, self.generator)
                torch.autograd.backward(out.loss)
                self.optimizer.step()
                self.regime.constrain(self.model)
                self.totals.add_(out.stats)
        # Capture fails with many error types (an op that synchronises, an unsupported RNG
        # use, an old torch without generator registration); each means "run eagerly".
        except Exception as err:
            logger.warning(
                "CUDA graph capture failed (%s: %s); training eagerly",
                type(err).__name__,
                " ".join(str(err).split())[:200],
            )
            torch.cuda.synchronize(self.x.device)
            self._restore(snap)
            self._graphs = False
            self._graph = None
            self._eager(idx)
            return
        self._graph = graph
        self._static = (static_idx, x, y, region, out)
        logger.info("captured the training step in a CUDA graph (batch %d)", len(idx))
        graph.replay()
