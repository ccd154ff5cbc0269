"""The split runtime: real edge and host processes over TCP, bandwidth traces, a controller that moves the split.

``docs/runtime.md`` describes it; the modules:

* :mod:`~model.runtime.wire`: the versioned binary message format (HELLO, WELCOME, FRAME, REPLY, ERROR; CRC-32);
* :mod:`~model.runtime.codec`: a FRAME's payload, the split feature coded as the engine's encode unit codes it, and
  the host's decoding;
* :mod:`~model.runtime.nets`: the network and its int16 twin as both ends load it, with a digest;
* :mod:`~model.runtime.host`: the host (asyncio or thread-per-connection server);
* :mod:`~model.runtime.edge`: the edge (preparation, the two-stage pipeline over a wall or simulated clock,
  reconnects, the run's summary);
* :mod:`~model.runtime.trace`: bandwidth traces, the radio's power per rate, the pacer; the shipped traces in
  ``traces/``;
* :mod:`~model.runtime.controller` and :mod:`~model.runtime.qfcheck`: the candidates (split, codec, QF within the
  accuracy budget), the cost model's predictions, the bandwidth estimate and the policies;
* :mod:`~model.runtime.rtl`: ``--edge rtl``, the edge part on the engine in Verilator;
* :mod:`~model.runtime.report`: the summary table and the report plot; :mod:`~model.runtime.bench`: measurements.

The command line is :mod:`model.cli_runtime` (``edgesplit host``, ``edge``, ``runtime-report``).
"""
