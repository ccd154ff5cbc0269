"""The accuracy study's QFs, checked against the encode unit's codec.

The accuracy study (``build/accuracy/<net>.json``) measures JPEG with ``golden.featpack``'s min/max float16 scaling
of each map to 8 bits. The engine's encode unit (what the runtime sends) scales by a power of two
(:mod:`sim.encoding`): up to 2x coarser codes, so the same QF loses more. Measured on ResNet-20 (500 test images,
study QF at a 1% budget): 0.8..4.8% top-1 lost at the hidden splits and 10% at the logits, instead of < 1%.

So before a run, every split's QF is checked on the network's *training* images (never the test images the run
reports on): top-1 of the host (float, as the study's) on the features coded and decoded exactly as the runtime
does, against the same host on the uncoded features. If the study's QF loses more than the budget, the QF is
raised by bisection up to 100 (the smallest QF within the budget, assuming loss falls with the QF, as the study
does); a split where even QF 100 loses more has no JPEG candidate. Results are cached in
``build/runtime/<net>_qf.json`` (keyed by the int16 network's digest, the budget and the image count).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from golden.errors import UserError
from golden.network import INPUT

DEFAULT_IMAGES = 300
CACHE_VERSION = 1


def _cache_path(net_name: str):
    from golden.data import build_dir

    return build_dir("runtime") / f"{net_name}_qf.json"


def _predict(rt, split: str, values: np.ndarray, batch: int = 250) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(values), batch):
            v = values[i:i + batch]
            if split == INPUT:
                x = torch.from_numpy(rt.norm.from_u8(v))
            else:
                x = torch.from_numpy(v.astype(np.float32) * np.float32(2.0 ** -rt.frac(split)))
            out.append(rt._host(split)(x).numpy().reshape(len(v), -1).argmax(1))
    return np.concatenate(out)


def _coded(trials: list, qf: int) -> tuple[np.ndarray, float]:
    out = [t.decoded(qf) for t in trials]
    return np.stack([d for d, _ in out]), float(np.mean([b for _, b in out]))


def check(rt, study: dict[str, tuple[int, float, float]], budget: float, data: str | None = None,
          images: int = DEFAULT_IMAGES, progress: Callable[[str], None] | None = None
          ) -> dict[str, tuple[int, float, float]]:
    """``{split: (QF, top-1 loss, mean payload bytes)}`` for the encode unit's codec (module docstring), from the
    study's ``{split: (QF, loss, bytes)}``."""
    if not study:
        return {}
    key = {"version": CACHE_VERSION, "digest": rt.digest, "budget": budget, "images": images,
           "splits": sorted(study)}
    path = _cache_path(rt.name)
    try:
        doc = json.loads(path.read_text())
        if doc.get("key") == key:
            return {s: tuple(v) for s, v in doc["qfs"].items()}
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    from model.accuracy import load_dataset
    from model.runtime.edge import features

    say = progress or (lambda s: None)
    try:
        x, y = load_dataset(rt.net, data, "train", images)
    except UserError as e:
        raise UserError(f"cannot check the QFs of {rt.name} for the encode unit's codec: {e}") from None
    splits = sorted(study, key=lambda s: rt.net.split(s).index)
    say(f"checking the study's QFs for the encode unit's codec on {len(x)} training images")
    feats, _ = features(rt, x, splits)
    out: dict[str, tuple[int, float, float]] = {}
    from model.runtime.codec import JpegTrial

    for s in splits:
        ref = float(np.mean(_predict(rt, s, feats[s]) == y))
        cache: dict[int, tuple[float, float]] = {}
        trials = [JpegTrial(v, s == INPUT) for v in feats[s]]

        def loss(q: int, _s: str = s, _ref: float = ref, _cache: dict = cache, _t: list = trials) -> float:
            if q not in _cache:
                dec, nb = _coded(_t, q)
                _cache[q] = (_ref - float(np.mean(_predict(rt, _s, dec) == y)), nb)
            return _cache[q][0]

        q0 = int(study[s][0])
        if loss(q0) <= budget + 1e-12:
            best = q0
        elif loss(100) > budget + 1e-12:
            best = None
        else:
            lo, hi = q0, 100          # lo fails, hi passes
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if loss(mid) <= budget + 1e-12:
                    hi = mid
                else:
                    lo = mid
            best = hi
        say(f"{s}: study QF {q0} -> encode unit QF {best if best is not None else 'none'} "
            f"({len(cache)} evaluations)")
        if best is not None:
            out[s] = (best, max(0.0, cache[best][0]), cache[best][1])
    try:
        from golden import files

        files.write_text(path, json.dumps({"key": key, "qfs": out}, indent=1))
    except UserError:
        pass   # a read-only build folder: recompute next time
    return out


__all__ = ["DEFAULT_IMAGES", "check"]
