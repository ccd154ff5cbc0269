"""The one planner (pure Python: no Amaranth, no numpy): where a network's maps live and how a layer that does
not fit the feature buffer is cut into bands. ``sim.program`` lowers its plans to engine commands and
``model.counts`` counts the same plans.

* :mod:`hw.plan.bands`: the bands of one layer (:func:`plan_bands`, :func:`add_bands`) and their estimates;
* :mod:`hw.plan.chain`: the buffer plan of a linear network (:func:`plan_chain`);
* :mod:`hw.plan.dag`: the buffer plan of a branchy network (:func:`plan_dag`, :func:`concat_slots`).
"""

from hw.plan.bands import (
    BEAT_CYCLES,
    COMMAND_CYCLES,
    LATENCY,
    READ_WORDS,
    WORDS_PER_CYCLE,
    BandPlan,
    BandShape,
    add_bands,
    band_rows,
    band_work,
    banded_estimate,
    conv_packs,
    plan_bands,
    resident_estimate,
    subsampled_conv,
)
from hw.plan.chain import ChainLayer, ChainStep, plan_chain
from hw.plan.dag import LayerPlan, PlanLayer, concat_slots, plan_dag

__all__ = ["BEAT_CYCLES", "COMMAND_CYCLES", "LATENCY", "READ_WORDS", "WORDS_PER_CYCLE", "BandPlan", "BandShape",
           "ChainLayer", "ChainStep", "LayerPlan", "PlanLayer", "add_bands", "band_rows", "band_work",
           "banded_estimate", "concat_slots", "conv_packs", "plan_bands", "plan_chain", "plan_dag", "resident_estimate",
           "subsampled_conv"]
