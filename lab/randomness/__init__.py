"""Randomness, below population and engine: counter-based streams, quantile tables, the thread pool, designs,
and the exact sums a stack of worlds needs.

- `streams`: `Streams`, the run's random streams with common random numbers down to the customer.
- `quantiles`: `gamma_quantile`, `beta_quantile`, table-based inverse distribution functions.
- `threads`: `in_parallel`, element-wise work over the cores.
- `designs`: SALib's Saltelli and Morris designs over the unit cube (for batches and robust studies).
- `sums`: `slice_sums`, many slices of a batch summed at once, each to the bits of numpy's own sum.
"""

from lab.randomness.quantiles import beta_quantile, gamma_quantile
from lab.randomness.streams import Streams, WorldStreams
from lab.randomness.threads import in_parallel

__all__ = ["Streams", "WorldStreams", "beta_quantile", "gamma_quantile", "in_parallel"]
