"`deocc evaluate` as a user runs it: on a folder made by `deocc synth` + `deocc occlude`, and with the bundled checkpoints."
import json
import pytest
from deocc.core import bundled_names

KEYS = {"n", "accuracy_input", "accuracy_restored", "accuracy_clean", "psnr_input", "psnr_restored",
        "judge_accuracy_input", "judge_accuracy_restored"}

@pytest.fixture(scope="module")
def occluded(tmp_path_factory):
    from deocc.cli import main
    root = tmp_path_factory.mktemp("ev")
    assert main(["synth", "--out", str(root / "clean"), "--n-identities", "2", "--frames", "1", "--size", "48", "--seed", "3"]) == 0
    assert main(["occlude", "--src", str(root / "clean"), "--out", str(root / "occ"), "--variants", "2", "--coverage", "0.2,0.3", "--seed", "1"]) == 0
    return root

def test_evaluate_json_on_synth_plus_occlude(run_deocc, occluded, tiny_ckpts):
    r = run_deocc("evaluate", "--data", occluded / "occ", "--clean", occluded / "occ_clean", "--deoccluder", tiny_ckpts / "full",
                  "--fer", tiny_ckpts / "fer", "--judge", "fer-minixception", "--json", check=0)
    res = json.loads(r.stdout)
    assert KEYS <= set(res), KEYS - set(res)
    assert res["n"] == 2 * 6 * 2
    for k in KEYS - {"n", "psnr_input", "psnr_restored"}: assert 0 <= res[k] <= 1, k
    assert res["psnr_input"] > 5 and res["psnr_restored"] > 5
    assert any("resized" in n for n in res["notes"])                       # 48 px faces → the 96 px model input

@pytest.mark.skipif(not {"synthface-full", "synthface-fer", "synthface-judge"} <= set(bundled_names()), reason="no bundled checkpoints in this checkout")
def test_evaluate_out_of_the_box_with_bundled_checkpoints(run_deocc, occluded):
    r = run_deocc("evaluate", "--data", occluded / "occ", "--clean", occluded / "occ_clean", "--judge", "synthface-judge", "--json", check=0)
    res = json.loads(r.stdout)
    assert KEYS <= set(res) and res["n"] == 24
    assert res["accuracy_clean"] > 1 / 6          # the bundled FER is trained: better than chance on clean SynthFace


def test_reproduce_takes_any_dataset_spec(run_deocc, tmp_path):
    "`deocc reproduce --data` on a folder written by `deocc synth` (identities from its meta.csv), shrunk with --set."
    src = tmp_path / "faces"
    run_deocc("synth", "--out", src, "--n-identities", 6, "--frames", 1, "--size", 32, "--seed", 5, check=0)
    sets = ["size=32", "fer_epochs=1", "judge_epochs=1", "test_fraction=0.34", "val_fraction=0.25", "batch_size=8"]
    run_deocc("reproduce", "--quick", "--data", f"imagefolder:{src}", *[a for s in sets for a in ("--set", s)],
              "--out", tmp_path / "r", "--no-progress", check=0)
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    assert res["config"]["data"] == f"imagefolder:{src}" and res["config"]["judge_epochs"] == 1
    assert res["meta"]["test set"].startswith("12 faces of 2 held-out identities")   # 2 of the folder's 6 people
    assert {"clean", "A", "B", "C", "D"} <= set(res["aggregate"]["accuracy"])
