"""``edgesplit dse``: the design-space search (:mod:`model.dse`; docs/dse.md).

``edgesplit dse --net NET [--arrays 8x8,12x12,16x16,24x24] [--buffers 2**17,2**18,2**19]
[--links 1mbps,2mbps,22mbps] [--budget 0.01] [--counts auto|analytical] [--tech FILE] [--synth DIR] [--json PATH]
[--plot PATH | --no-plot] [--verify K] [--text-plot LINK[,LINK] | all]``

For every array size x feature-buffer size (an :class:`golden.arch.EngineArch`): the area from ``make synth``'s
28 nm table, and for every split, encoding and link within the accuracy-loss budget the frames per second and
energy per frame (the cost model); per link, a table of each architecture's best split and the Pareto front
of area x energy x frames/s; a plot (default ``build/dse/<net>_dse.png``) and, with ``--json``, every point.
``--text-plot LINK``: that link's front drawn as text after the table and the verification (:mod:`model.dse_text`;
``all``: every searched link), the verified points in upper case.

``--verify K``: the first K Pareto points of distinct architectures (architectures the RTL builds first, then by
energy) run cycle-accurately on the RTL (``python -m sim.run --net NET [--arch A] [--split S]``, or a result in
``build/sim/`` of the same architecture and RTL sources hash); per point the model's (analytical) cycles of the
edge part against the RTL's and the relative error. A point whose architecture the RTL cannot run is printed
as not verified, never with a number.

Bad values (an array that is not square or outside 4x4..24x24, an unknown link, a budget outside [0, 1), a
buffer size the engine cannot have, a ``--text-plot`` link that is not searched, an output that cannot be
written, no synthesis table) print one line on stderr and exit with status 2 (``model.cli``); they are checked
before any work.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from golden import files, limits
from golden.errors import UserError

NET_HELP = ("network: a built-in name (alexnet, vgg16, resnet50, digits, ...), PATH.onnx or PATH.py:FACTORY")
MAX_VERIFY = 48


def register(subparsers) -> None:
    from model.dse import DEFAULT_ARRAYS, DEFAULT_BUDGET, DEFAULT_BUFFERS, DEFAULT_LINKS

    d = subparsers.add_parser(
        "dse", help="design-space search: engine sizes x links x splits, area, energy, frames/s, Pareto front",
        description="For each MAC-array and feature-buffer size, the area (28 nm synthesis table) and for each "
                    "split and link the frames/s and energy per frame; the Pareto front of area x energy x "
                    "frames/s per link, a plot, and optionally RTL runs of the front's points.")
    d.add_argument("--net", required=True, help=NET_HELP)
    d.add_argument("--input-shape", metavar="C,H,W", help="input shape of a model file that does not fix it")
    d.add_argument("--arrays", default=",".join(DEFAULT_ARRAYS),
                   help=f"square MAC arrays, comma-separated (default {','.join(DEFAULT_ARRAYS)})")
    d.add_argument("--buffers", default=",".join(f"2**{w.bit_length() - 1}" for w in DEFAULT_BUFFERS),
                   help="feature-buffer sizes in 16-bit words: N, 2**N or NK (default 2**17,2**18,2**19; "
                        "today's engine has 2**18)")
    d.add_argument("--links", default=",".join(DEFAULT_LINKS),
                   help="links, comma-separated: 1mbps, 2mbps, 22mbps or RATE_BPS:POWER_W "
                        f"({limits.LINK_HELP}; default {','.join(DEFAULT_LINKS)})")
    d.add_argument("--budget", default=str(DEFAULT_BUDGET),
                   help=f"accuracy-loss budget, absolute top-1 in [0, 1) (default {DEFAULT_BUDGET})")
    d.add_argument("--counts", default="auto",
                   help="auto (the default 12x12 engine with RTL counters where build/sim/<net>.json has them, "
                        "others analytical) or analytical (every architecture)")
    d.add_argument("--tech", metavar="FILE", help="technology file (default: hw/tech/28nm.yaml)")
    d.add_argument("--synth", metavar="DIR", help="make synth's output folder with the engine's 28 nm table "
                                                  "(default build/synth)")
    d.add_argument("--json", metavar="PATH", help="write every point, the areas and the fronts as JSON")
    d.add_argument("--plot", metavar="PATH", help="the plot (default build/dse/<net>_dse.png; "
                                                  f"{', '.join(files.PLOT_EXTS)})")
    d.add_argument("--no-plot", action="store_true", help="write no plot")
    d.add_argument("--verify", metavar="K", help=f"run K Pareto points (distinct architectures, 1..{MAX_VERIFY}) "
                                                 "on the RTL and print the model's error")
    d.add_argument("--text-plot", metavar="LINK", help="print that link's Pareto front as a text chart (frames/s x "
                                                       "mJ/frame, log; verified points in upper case): one or "
                                                       "more of --links, comma-separated, or all")
    d.set_defaults(func=cmd_dse)


def _verify_k(text: str | None) -> int:
    if text is None:
        return 0
    try:
        k = int(text)
    except ValueError:
        k = -1
    if not 1 <= k <= MAX_VERIFY:
        raise UserError(f"--verify {text!r} is not allowed; allowed: an integer in 1..{MAX_VERIFY} "
                        f"(the number of Pareto points to run on the RTL)")
    return k


def _text_links(text: str | None, links) -> list[str]:
    """The links ``--text-plot`` names: ``all`` or some of the searched ``links`` (their names or equal specs)."""
    if text is None:
        return []
    names = [lk.name for lk in links]
    if text.strip().lower() == "all":
        return names
    from model.system import parse_link

    out = []
    for item in text.split(","):
        try:
            name = parse_link(item).name if item.strip() else None
        except UserError:
            name = None
        if name not in names:
            raise UserError(f"--text-plot {text!r} is not allowed; allowed: all or links of --links "
                            f"({', '.join(names)}), comma-separated")
        if name not in out:
            out.append(name)
    return out


def cmd_dse(args) -> int:
    from model import dse

    t0 = time.perf_counter()
    arrays = dse.parse_arrays(args.arrays)
    buffers = dse.parse_buffers(args.buffers)
    links = dse.parse_links(args.links)
    budget = dse.check_budget(args.budget)
    k = _verify_k(args.verify)
    text_links = _text_links(args.text_plot, links)
    if args.counts not in ("auto", "analytical"):
        raise UserError(f"unknown counts source {args.counts!r}; allowed: auto, analytical")
    if args.no_plot and args.plot:
        raise UserError("--plot and --no-plot exclude each other; give one")
    from hw.tech import load_tech

    tech = load_tech(args.tech)
    dse.architectures(arrays, buffers)          # every combination is an engine the arch description allows
    dse.load_table(args.synth)                  # no synthesis table: one line, run make synth
    from golden.network import load_network

    net = load_network(args.net, input_shape=args.input_shape)
    model_file = args.net.rpartition(":")[0] if ".py:" in args.net else (args.net if args.net.endswith(".onnx")
                                                                          else None)
    inputs = [("--tech", args.tech), ("--net", model_file)]
    plot_path = None
    if not args.no_plot:
        default = args.plot is None
        plot_path = Path(args.plot) if args.plot else dse.DSE_DIR / f"{net.name}_dse.png"
        files.check_output_file(plot_path, "--plot file", files.PLOT_EXTS, inputs=inputs, create_parent=default)
    if args.json:
        files.check_output_file(args.json, "--json file", inputs=inputs)
        if plot_path is not None and files.same_file(args.json, plot_path):
            raise UserError(f"--json file {args.json} is also the plot; give two files")

    bar = _bar(len(arrays) * len(buffers))
    try:
        res = dse.search(net, arrays, buffers, links, budget, tech=tech, counts=args.counts, synth_dir=args.synth,
                         progress=lambda done, total: bar.update(1))
    finally:
        bar.close()
    print(dse.format_table(res))
    print(f"searched in {res.timings_s['total_s']:.2f} s (counts {res.timings_s['counts_s']:.2f} s, cost model "
          f"{res.timings_s['evaluate_s']:.2f} s, Pareto {res.timings_s['pareto_s']:.3f} s)")
    status = 0
    checks = []
    if k:
        checks, status = verify(res, k, net, args.net, args.input_shape)
    if text_links:
        from model.dse_text import text_plot

        for lk in text_links:
            print()
            print(text_plot(res, lk, checks))
    doc = {**res.to_dict(), "verify": checks, "wall_s": time.perf_counter() - t0}
    with files.AtomicGroup() as g:
        if plot_path is not None:
            dse.plot(res, g.path(plot_path, "--plot file"))
        if args.json:
            g.path(args.json, "--json file").write_text(json.dumps(doc, indent=1, allow_nan=False, default=str))
    for p in [plot_path, args.json]:
        if p:
            print(f"wrote {p}")
    return status


def _bar(total: int):
    """A tqdm bar on a terminal's stderr, shown only when the search takes more than 2 s."""
    try:
        from tqdm import tqdm
    except ImportError:   # pragma: no cover
        class _No:
            def update(self, n):
                pass

            def close(self):
                pass
        return _No()
    # disable=None: no bar where stderr is not a terminal (logs, make bench, pipes)
    return tqdm(total=total, desc="dse architectures", unit="arch", delay=2.0, leave=False, file=sys.stderr,
                disable=None)


# ---- --verify: the front's points on the RTL -------------------------------------------------------------------


def sim_run_accepts_arch() -> bool:
    """Whether ``python -m sim.run`` takes ``--arch`` (the RTL parameterised by array size)."""
    p = subprocess.run([sys.executable, "-m", "sim.run", "--help"], capture_output=True, text=True,
                       cwd=_repo(), check=False)
    return p.returncode == 0 and "--arch" in p.stdout


def _repo() -> Path:
    return Path(__file__).resolve().parents[1]


def rtl_hash() -> str | None:
    """Today's RTL sources hash (``hw.sources``), None where this checkout has no such record yet."""
    try:
        from hw.sources import rtl_sources_hash
    except ImportError:
        return None
    return rtl_sources_hash()


def pick(res, k: int, buildable) -> list:
    """The first ``k`` Pareto points of distinct architectures: those the RTL can run first, then those with work on
    the engine (not host-only), then by energy."""
    front = sorted([p for p in res.points if p.pareto],
                   key=lambda p: (not buildable(p.arch), p.edge_cycles == 0, p.energy_j, -p.fps, p.link))
    out, seen = [], set()
    for p in front:
        if p.arch not in seen:
            seen.add(p.arch)
            out.append(p)
        if len(out) == k:
            break
    return out


def edge_layers(net, split: str, nc) -> list:
    """The layer counts of the edge part of ``split`` that take cycles (``nc``: a NetCounts)."""
    names = net.split_names
    edge = set(names[1:names.index(split) + 1])
    return [lc for lc in nc.layers if lc.split in edge and lc.type != "flatten"]


def _usable(path: Path, net, arch, eng, wanted: set[str], current_hash: str | None) -> tuple[dict, str]:
    """The RTL layer counts of ``path`` if it is a run of this architecture and today's RTL covering ``wanted``
    (else ``{}`` and why not)."""
    from golden.arch import DEFAULT_ARCH, from_dict
    from model.counts import rtl_layer_counts, rtl_result

    data = rtl_result(net, path)
    if data is None:
        return {}, "absent"
    try:
        recorded = from_dict(data["arch"]) if "arch" in data else DEFAULT_ARCH
    except UserError:
        return {}, "its architecture record is not readable"
    if recorded.name != arch.name:
        return {}, f"it is of architecture {recorded.name}"
    if current_hash is None or data.get("rtl_hash") != current_hash:
        return {}, "it does not record today's RTL sources hash"
    rows = rtl_layer_counts(net, path, eng, include_scaled=True)
    missing = wanted - set(rows)
    if missing:
        return {}, f"it lacks {len(missing)} of the edge layers"
    return rows, "reused"


def verify(res, k: int, net, net_spec: str, input_shape: str | None) -> tuple[list[dict], int]:
    """Run ``k`` Pareto points on the RTL; print and return one record per point; status 1 if a run failed."""
    from golden.arch import DEFAULT_ARCH
    from model.counts import EngineParams, net_counts
    from model.dse import words_text

    archs = {a.name: a for a in res.archs}
    has_arch = sim_run_accepts_arch()
    current = rtl_hash()
    points = pick(res, k, lambda name: has_arch or archs[name] == DEFAULT_ARCH)
    print()
    print(f"verify: {len(points)} Pareto point{'s' if len(points) != 1 else ''} of distinct architectures on the RTL"
          + ("" if len(points) == k else f" (the front has {len(points)} architectures)"))
    out, status = [], 0
    sim_dir = _repo() / "build" / "sim"
    from sim.run import DEFAULT_SPLITS

    for p in points:
        a = archs[p.arch]
        head = f"  {p.array} {words_text(p.fb_words)} {p.label} ({p.link}):"
        rec = {"arch": a.name, "split": p.split, "encoding": p.encoding, "link": p.link, "verified": False}
        out.append(rec)
        if p.split == net.split_names[0]:
            rec["note"] = "host-only: nothing runs on the engine"
            print(f"{head} nothing to verify (host-only: nothing runs on the engine)")
            continue
        if a != DEFAULT_ARCH and not has_arch:
            rec["note"] = "not verified: the RTL is built for 12x12 only"
            print(f"{head} not verified: the RTL is built for 12x12 only")
            continue
        eng = EngineParams.from_arch(a)
        model_layers = edge_layers(net, p.split, net_counts(net, eng, "analytical"))
        wanted = {lc.layer for lc in model_layers}
        default_split = DEFAULT_SPLITS.get(net.name)
        names = net.split_names
        covered_by_default = default_split is None or names.index(p.split) <= names.index(default_split)
        stem = net.name + a.suffix
        candidates = [sim_dir / f"{stem}.json", sim_dir / f"{stem}_{p.split}.json"]
        rows, why = {}, "absent"
        for c in candidates:
            rows, why = _usable(c, net, a, eng, wanted, current)
            if rows:
                rec["rtl_json"] = str(c.relative_to(_repo()))
                rec["rtl_run"] = "reused"
                break
        if not rows:
            cmd = [sys.executable, "-m", "sim.run", "--net", net_spec]
            if input_shape:
                cmd += ["--input-shape", input_shape]
            if not covered_by_default:
                cmd += ["--split", p.split]
            if a != DEFAULT_ARCH:
                cmd += ["--arch", _arch_arg(a)]
            print(f"{head} running {' '.join(['python'] + cmd[1:])} ...", flush=True)
            t = time.perf_counter()
            run = subprocess.run(cmd, capture_output=True, text=True, cwd=_repo(), check=False)
            rec["rtl_run_s"] = time.perf_counter() - t
            wrote = [ln[6:].strip() for ln in run.stdout.splitlines() if ln.startswith("wrote ")]
            if run.returncode != 0 or not wrote:
                last = (run.stderr.strip().splitlines() or run.stdout.strip().splitlines() or ["no output"])[-1]
                # exit 2: sim.run refused the architecture or the network (a limit of today's RTL or
                # compiler, said in its line); anything else is a failed run (a mismatch, a crash)
                what = "sim.run refused it" if run.returncode == 2 else f"sim.run failed (exit {run.returncode})"
                rec["note"] = f"not verified: {what}: {last}"
                print(f"{head} {rec['note']}")
                status = status if run.returncode == 2 else 1
                continue
            path = Path(wrote[-1])
            path = path if path.is_absolute() else _repo() / path
            from model.counts import rtl_layer_counts

            rows = rtl_layer_counts(net, path, eng, include_scaled=True)
            rec["rtl_json"] = str(path.relative_to(_repo())) if path.is_relative_to(_repo()) else str(path)
            rec["rtl_run"] = "run"
        used = [lc for lc in model_layers if lc.layer in rows]
        model_cycles = sum(lc.cycles for lc in used)
        rtl_cycles = sum(rows[lc.layer].cycles for lc in used)
        scaled = sum(1 for lc in used if rows[lc.layer].scale != 1.0)
        err = (model_cycles - rtl_cycles) / rtl_cycles if rtl_cycles else float("nan")
        rec.update(verified=bool(used) and rtl_cycles > 0, model_cycles=model_cycles, rtl_cycles=rtl_cycles,
                   relative_error=err, layers_compared=len(used), edge_layers=len(model_layers),
                   layers_scaled_from_slices=scaled)
        cover = "" if len(used) == len(model_layers) else f" ({len(used)} of {len(model_layers)} edge layers)"
        sl = f"; {scaled} FC layer{'s' if scaled != 1 else ''} simulated on slices and extrapolated" if scaled else ""
        print(f"{head} model (analytical) {model_cycles:,.0f} cycles, RTL {rtl_cycles:,.0f} cycles, "
              f"error {err:+.2%}{cover}{sl} [{rec['rtl_run']} {rec['rtl_json']}]")
    return out, status


def _arch_arg(a) -> str:
    """``16x16`` for an array size with every other field at its default, else a JSON file of the fields."""
    from golden.arch import parse_arch

    if parse_arch(a.array) == a:
        return a.array
    d = files.make_dir(_repo() / "build" / "dse" / "arch", "folder of the architecture files")
    p = d / f"{a.name}.json"
    files.write_text(p, json.dumps(a.as_dict(), indent=1))
    return str(p)
