import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MPLBACKEND", "Agg")

def _deocc_exe():
    exe = Path(sys.executable).with_name("deocc")
    assert exe.exists(), f"deocc console script missing next to {sys.executable}: pip install -e ."
    return [str(exe)]

@pytest.fixture
def run_deocc():
    "Run the `deocc` console script; returns CompletedProcess (text)."
    def run(*args, timeout=600, check=None):
        r = subprocess.run(_deocc_exe() + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        if check is not None: assert r.returncode == check, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
        return r
    return run


@pytest.fixture(scope="session")
def tiny_ckpts(tmp_path_factory):
    """Untrained tiny checkpoints, seeded: a FER `fer` and de-occluders `full` (model C's place) and `no_expr` (model B's).
    For wiring tests, not accuracy; tests that alter checkpoints copy them first."""
    import torch
    from deocc.models import create_fer, create_deoccluder
    root = tmp_path_factory.mktemp("tiny_ckpts"); torch.manual_seed(0)
    create_fer("tiny").save_pretrained(root / "fer")
    create_deoccluder("tiny").save_pretrained(root / "full")
    create_deoccluder("tiny").save_pretrained(root / "no_expr")
    return root
