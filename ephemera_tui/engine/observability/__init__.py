"""What the engine reports about itself, recorded in every process and read by any.

- :mod:`.recorder` keeps latency samples, counters and gauges in ``metrics.db`` (cheap to
  record, written in batches by a daemon thread) and reads them back;
- :mod:`.instrument` wires a recorder to an engine (SQL timer, cache and pool gauges) and
  holds the ``@instrumented`` decorator;
- :mod:`.quality` samples the vector index's recall@10 against exact search;
- :mod:`.report` gathers everything ``ephemera stats`` and the status screen show;
- :mod:`.prometheus` exposes it in the Prometheus text format and serves ``/metrics``.
"""

from .instrument import instrumented, open_metrics
from .recorder import MetricsData, MetricsRecorder, read_metrics

__all__ = ["MetricsData", "MetricsRecorder", "instrumented", "open_metrics", "read_metrics"]
