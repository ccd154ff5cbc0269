"""hw.sources: the hashes that label simulator counts and key the generated Verilog describe the sources as this
process loaded them, not a file edited while a run goes on (a run that started before an edit used to store the
old code's Verilog under the new code's key)."""

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_an_edit_after_the_import_changes_neither_hash(tmp_path):
    # a copy of hw/ and the two golden files it hashes, in a fresh process: hash, edit a file, hash again
    tree = tmp_path / "repo"
    (tree / "golden").mkdir(parents=True)
    subprocess.run(["cp", "-r", str(REPO / "hw"), str(tree / "hw")], check=True)
    for name in ("__init__.py", "fixedpoint.py", "arch.py", "errors.py"):
        if (REPO / "golden" / name).exists():
            (tree / "golden" / name).write_bytes((REPO / "golden" / name).read_bytes())
    script = textwrap.dedent("""
        import hw.sources as s
        from pathlib import Path
        before = s.rtl_sources_hash()
        f = Path(s.HW_DIR) / "pe.py"
        loaded = s.source_bytes(f)
        f.write_text(f.read_text() + "\\n# edited while the process runs\\n")
        s.rtl_sources_hash.cache_clear()
        assert s.rtl_sources_hash() == before
        assert s.source_bytes(f) == loaded != f.read_bytes()
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=tree, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
