"""`sdap distill`: teacher outputs cached once, the student trained with the shared loop, resume,
and `sdap denoise --model` choosing between teacher and student."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sdap_cli.cli import app
from sdap_cli.inference.checkpoints import load_weights
from sdap_cli.inference.denoiser import Denoiser
from sdap_cli.method.student import StudentUNet
from sdap_cli.training.distill import distill, distill_loss, teacher_targets
from sdap_cli.training.schedule import ema_decay
from sdap_cli.training_config import DistillConfig
from tests.helpers import noisy_rgb, sha, tiny_student, tiny_weights, write_png

TINY = ["--student-ch", "8,8,8", "--student-blocks", "1,1,1", "--batch", "2", "--patch", "32", "--workers", "0",
        "--device", "cpu", "--precision", "fp32"]


@pytest.fixture
def setup(tmp_path):
    for i in range(2):
        write_png(tmp_path / "data" / f"n{i}.png", noisy_rgb(40 + 9 * i, 52, seed=i))
    rng = np.random.default_rng(0)
    clean = noisy_rgb(32, 32, seed=7)
    write_png(tmp_path / "val" / "noisy" / "0.png",
              np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8))
    write_png(tmp_path / "val" / "clean" / "0.png", clean)
    return tmp_path, tiny_weights(tmp_path / "teacher.safetensors")


def test_distill_cli_trains_a_student_and_caches_the_teacher(setup):
    tmp, teacher = setup
    before = {p: sha(p) for p in (tmp / "data").iterdir()}
    args = ["distill", "--data", str(tmp / "data"), "--teacher", str(teacher), "--val", str(tmp / "val"),
            "--cache", str(tmp / "cache"), "-n", "6", "--val-every", "3", "--checkpoint-every", "3", "--json"]
    r = CliRunner().invoke(app, args + ["--out", str(tmp / "run1")] + TINY)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout[r.stdout.index("{"):])
    assert out["iterations"] == 6 and [h["step"] for h in out["history"]] == [3, 6]
    assert out["teacher_val"]["psnr"] > 0
    lw = load_weights(out["best_path"])
    assert isinstance(lw.model, StudentUNet) and lw.model.arch["ch"] == [8, 8, 8]
    assert lw.metadata["training"]["teacher_outputs_computed"] == 2
    assert lw.metadata["training"]["teacher"]["sha256"] == sha(teacher)
    assert len(list((tmp / "cache").glob("*.npy"))) == 2
    assert {p: sha(p) for p in (tmp / "data").iterdir()} == before                 # inputs untouched
    # a second run with the same teacher and cache pays nothing for the teacher
    r = CliRunner().invoke(app, args + ["--out", str(tmp / "run2")] + TINY)
    assert r.exit_code == 0, r.output
    lw2 = load_weights(tmp / "run2" / "last.safetensors")
    assert lw2.metadata["training"]["teacher_outputs_computed"] == 0
    # the same steps from the same cached targets give the same student
    a, b = load_weights(tmp / "run1" / "last.safetensors").model, lw2.model
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_cached_targets_are_the_teachers_output_and_keyed_by_teacher(setup, tmp_path):
    tmp, teacher = setup
    den = Denoiser(load_weights(teacher).model, refine="e")
    files = sorted((tmp / "data").iterdir())
    noisy, targets, computed = teacher_targets(den, "k1", files, tmp_path / "c")
    assert computed == 2
    for y, t in zip(noisy, targets):
        np.testing.assert_allclose(t, den.denoise(y), atol=1e-3)              # stored as float16
    assert teacher_targets(den, "k1", files, tmp_path / "c")[2] == 0
    assert teacher_targets(den, "k2", files, tmp_path / "c")[2] == 2            # another teacher: recomputed
    victim = sorted((tmp_path / "c").glob("n0-*-k1.npy"))[0]
    victim.write_bytes(b"garbage")                                              # a damaged entry
    assert teacher_targets(den, "k1", files, tmp_path / "c")[2] == 1


def test_distill_loss_is_the_mean_l1_to_the_target():
    net = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1))                           # identity at init
    y, t = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    loss = distill_loss(net, torch.cat([y, t], 1))
    assert loss.item() == pytest.approx((y - t).abs().mean().item(), rel=1e-6)


def test_distillation_lowers_the_loss_and_resume_is_exact(setup, tmp_path):
    tmp, teacher = setup
    cfg = DistillConfig(data=[str(tmp / "data")], teacher=teacher, out=str(tmp_path / "a"), iterations=40,
                        batch=2, patch=32, student={"ch": (8, 8, 8), "blocks": (1, 1, 1)}, workers=0,
                        precision="fp32", device="cpu", log_every=10, lr=2e-3, cache=tmp_path / "cache",
                        checkpoint_every=20)
    full = distill(cfg)
    rows = (tmp_path / "a" / "train_log.csv").read_text().splitlines()[1:]
    losses = [float(r.split(",")[1]) for r in rows]
    assert losses[-1] < losses[0]
    part = cfg.model_copy(update={"out": str(tmp_path / "b")})
    distill(part, stop_after=20)
    distill(part, resume=True)
    a = load_weights(full.last_path).model.state_dict()
    b = load_weights(tmp_path / "b" / "last.safetensors").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_distill_refuses_a_student_as_teacher(setup):
    tmp, _ = setup
    student = tiny_student(tmp / "s.safetensors")
    r = CliRunner().invoke(app, ["distill", "--data", str(tmp / "data"), "--teacher", str(student),
                                 "--out", str(tmp / "run")] + TINY)
    assert r.exit_code == 2 and "teacher must be a blind-spot DBSNl" in r.output
    r = CliRunner().invoke(app, ["distill", "--data", str(tmp / "data"), "--patch", "30"])
    assert r.exit_code == 2 and "multiple of 8" in r.output


# ----------------------------------------------------------------------------- denoise --model

@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """Pretend this installation ships a tiny teacher and a tiny student."""
    teacher = tiny_weights(tmp_path / "w" / "teacher.safetensors")
    student = tiny_student(tmp_path / "w" / "student.safetensors")
    import sdap_cli.inference.checkpoints as c
    import sdap_cli.inference.denoisers as d

    monkeypatch.setattr(c, "default_weights_path", lambda name=c.DEFAULT_WEIGHTS_NAME: teacher)
    monkeypatch.setattr(d, "shipped_student_path", lambda: student)
    write_png(tmp_path / "in" / "a.png", noisy_rgb(37, 29))
    return tmp_path, teacher, student


def _denoise(tmp, *extra):
    r = CliRunner().invoke(app, ["denoise", str(tmp / "in" / "a.png"), "-o", str(tmp / "out"), "--overwrite",
                                 "--json", "--device", "cpu", "--precision", "fp32", *extra])
    return r, (json.loads(r.stdout[r.stdout.index("{"):]) if r.exit_code == 0 else None)


def test_auto_uses_the_shipped_student_on_cpu_and_the_teacher_for_teacher_options(shipped):
    tmp, teacher, student = shipped
    r, out = _denoise(tmp, "--no-auto")                       # --model auto, one fixed path
    assert r.exit_code == 0, r.output
    net = out["network"]
    assert net["model"] == "student" and net["weights"] == str(student) and net["refine"] == "none"
    r, out = _denoise(tmp, "--refine", "r3")
    net = out["network"]
    assert net["model"] == "teacher" and net["weights"] == str(teacher) and net["refine"] == "r3"
    r, out = _denoise(tmp, "--model", "teacher")
    assert out["network"]["model"] == "teacher" and out["network"]["refine"] == "e"


def test_student_and_teacher_outputs_differ_and_keep_the_shape(shipped):
    import cv2

    tmp, _, _ = shipped
    _denoise(tmp, "--model", "student")
    s = cv2.imread(str(tmp / "out" / "a.png"))
    _denoise(tmp, "--model", "teacher")
    t = cv2.imread(str(tmp / "out" / "a.png"))
    assert s.shape == t.shape == (37, 29, 3) and not np.array_equal(s, t)


def test_model_mismatch_and_teacher_options_on_a_student_are_one_line_errors(shipped):
    tmp, teacher, student = shipped
    r, _ = _denoise(tmp, "-w", str(student), "--model", "teacher")
    assert r.exit_code == 2 and "holds a distilled student" in r.output          # usage errors
    r, _ = _denoise(tmp, "-w", str(teacher), "--model", "student")
    assert r.exit_code == 2 and "blind-spot teacher" in r.output
    r, _ = _denoise(tmp, "--model", "student", "--refine", "e")
    assert r.exit_code == 2 and "--refine" in r.output and "--model teacher" in r.output
    assert "Traceback" not in r.output


def test_model_student_without_a_shipped_student(shipped, monkeypatch):
    import sdap_cli.inference.denoisers as d

    tmp, _, _ = shipped
    monkeypatch.setattr(d, "shipped_student_path", lambda: None)
    r, _ = _denoise(tmp, "--model", "student")
    assert r.exit_code == 2 and "ships no student" in r.output
    r, out = _denoise(tmp, "--no-auto")                        # --model auto falls back to the teacher
    assert r.exit_code == 0 and out["network"]["model"] == "teacher"


def test_benchmark_times_a_student_in_one_pass(tmp_path):
    student = tiny_student(tmp_path / "s.safetensors")
    out = tmp_path / "b.json"
    r = CliRunner().invoke(app, ["benchmark", "--sizes", "24", "--precision", "fp32", "--runs", "1", "--warmup",
                                 "0", "-w", str(student), "--device", "cpu", "--json", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert [(row["refine"], row["model"]) for row in data["rows"]] == [("none", "weights")]
    assert data["env"]["networks"]["weights"]["kind"] == "student"
    assert data["rows"][0]["gmac_per_s"] > 0


def test_targets_table_agrees_with_the_config():
    from typing import get_args

    from sdap_cli.training.distill import TARGETS
    field = DistillConfig.model_fields["targets"].annotation
    assert set(get_args(get_args(field)[0])) == set(TARGETS)


def test_multi_targets_are_cached_once_and_are_the_transformed_teacher(setup, tmp_path):
    from sdap_cli.training.distill import target_image
    tmp, teacher = setup
    den = Denoiser(load_weights(teacher).model, refine="e")
    files = sorted((tmp / "data").iterdir())
    names = ("teacher", "phase3", "hflip", "rot90")
    noisy, targets, computed = teacher_targets(den, "k1", files, tmp_path / "c", targets=names)
    assert computed == len(files) * len(names)
    assert teacher_targets(den, "k1", files, tmp_path / "c", targets=names)[2] == 0
    # the single-target cache entries are shared with the multi-target run
    assert teacher_targets(den, "k1", files, tmp_path / "c")[2] == 0
    y, t = noisy[0], targets[0]
    assert t.shape == (*y.shape[:2], 3 * len(names))
    for k, name in enumerate(names):
        np.testing.assert_allclose(t[..., 3 * k:3 * k + 3], target_image(den, name, y), atol=1e-3)
    np.testing.assert_allclose(t[..., 6:9], den.denoise(np.ascontiguousarray(y[:, ::-1]))[:, ::-1], atol=1e-3)
    assert not np.allclose(t[..., 0:3], t[..., 3:6], atol=1e-3)     # another PD phase: another target


def test_the_eight_flips_and_transposes_are_the_symmetry_group_and_each_inverse_undoes_its_map():
    from sdap_cli.training.targets import _FLIPS, DIHEDRAL  # noqa: PLC2701
    a = np.random.default_rng(0).random((5, 7, 3))
    seen = {a.tobytes()}
    for name in DIHEDRAL[1:]:
        forward, back = _FLIPS[name]
        assert np.array_equal(back(forward(a)), a), name
        seen.add(np.ascontiguousarray(forward(a)).tobytes())
    assert len(seen) == 8 and len(set(DIHEDRAL)) == 8


def test_a_self_ensemble_is_the_mean_of_its_cached_terms_and_reuses_a_smaller_ones(setup, tmp_path):
    from sdap_cli.training.distill import DIHEDRAL, target_image
    tmp, teacher = setup
    den = Denoiser(load_weights(teacher).model, refine="e")
    files = sorted((tmp / "data").iterdir())
    noisy, t2, computed = teacher_targets(den, "k", files, tmp_path / "c", self_ensemble=2)
    assert computed == 2 * len(files)
    noisy, t4, computed = teacher_targets(den, "k", files, tmp_path / "c", self_ensemble=4)
    assert computed == 2 * len(files)                                   # the first two were cached
    y = noisy[1]
    terms = [target_image(den, name, y) for name in DIHEDRAL[:4]]
    assert t4[1].shape == y.shape
    np.testing.assert_allclose(t4[1], np.mean(terms, 0), atol=1e-3)
    np.testing.assert_allclose(t2[1], np.mean(terms[:2], 0), atol=1e-3)
    assert not np.allclose(terms[0], terms[1], atol=1e-3)              # the transpose is another output
    with pytest.raises(ValueError):
        teacher_targets(den, "k", files, tmp_path / "c", targets=("teacher", "hflip"), self_ensemble=2)
    with pytest.raises(ValueError):
        DistillConfig(self_ensemble=4, targets=["teacher", "hflip"])
    with pytest.raises(ValueError):
        DistillConfig(self_ensemble=3)


def test_sum_of_l1_equals_a_loop_over_targets():
    torch.manual_seed(0)
    net = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1))
    y = torch.rand(2, 3, 16, 16)
    ts = [torch.rand(2, 3, 16, 16) for _ in range(3)]
    total = distill_loss(net, torch.cat([y, *ts], 1))
    loop = sum(distill_loss(net, torch.cat([y, t], 1)) for t in ts)
    assert total.item() == pytest.approx(loop.item(), rel=1e-6)


def test_recharge_puts_the_noisy_value_in_one_target_where_it_says():
    from sdap_cli.training.distill import recharge
    y = torch.rand(4, 3, 32, 32)
    t = torch.rand(4, 5, 3, 32, 32)
    out = recharge(y, t, 0.3, torch.Generator().manual_seed(1))
    hit = (out == y.unsqueeze(1)).all(dim=2)                      # (B, K, P, P): target k recharged there
    changed = (out != t).any(dim=2)
    assert torch.equal(hit | ~changed, torch.ones_like(hit))      # a change is always to the noisy value
    per_pixel = hit.sum(1)
    assert per_pixel.max() <= 1                                   # at most one target per pixel
    assert abs(per_pixel.float().mean().item() - 0.3) < 0.03
    assert torch.equal(recharge(y, t, 0.0), t)
    assert torch.equal(recharge(y, t, 0.3, torch.Generator().manual_seed(1)), out)   # reproducible


def test_multi_target_distillation_runs_and_records_its_targets(setup, tmp_path):
    tmp, teacher = setup
    cfg = DistillConfig(data=[str(tmp / "data")], teacher=teacher, out=str(tmp_path / "m"), iterations=6,
                        batch=2, patch=32, student={"ch": (8, 8, 8), "blocks": (1, 1, 1)}, workers=0,
                        precision="fp32", device="cpu", log_every=3, cache=tmp_path / "cache",
                        targets=["teacher", "vflip", "auto"], recharge=0.5)
    result = distill(cfg)
    meta = load_weights(result.last_path).metadata["training"]
    assert meta["teacher"]["targets"] == ["teacher", "vflip", "auto"] and meta["teacher"]["recharge"] == 0.5
    assert meta["teacher_outputs_computed"] == 3 * len(list((tmp / "data").iterdir()))


def test_weight_average_is_the_ema_of_the_trained_weights_and_resume_is_exact(setup, tmp_path):
    tmp, teacher = setup
    d = 0.75
    cfg = DistillConfig(data=[str(tmp / "data")], teacher=teacher, out=str(tmp_path / "a"), iterations=4,
                        batch=2, patch=32, student={"ch": (8, 8, 8), "blocks": (1, 1, 1)}, workers=0,
                        precision="fp32", device="cpu", lr=2e-3, cache=tmp_path / "cache", checkpoint_every=1,
                        ema=d)
    states = []
    for k in (1, 2):                                    # state.pt after step 1, then after step 2
        distill(cfg, resume=k > 1, stop_after=k)
        states.append(torch.load(tmp_path / "a" / "state.pt", weights_only=False))
    (m1, a1), (m2, a2) = [(s["model"], s["average"]) for s in states]
    assert any(not torch.equal(a2[k], m2[k]) for k in m2)                      # the average lags the weights
    d2 = ema_decay(d, 2)
    assert d2 == 3 / 12
    for k in m2:                                        # avg_2 = d_2 avg_1 + (1 - d_2) w_2
        torch.testing.assert_close(a2[k], d2 * a1[k] + (1 - d2) * m2[k])
    saved = load_weights(tmp_path / "a" / "step_0000002.safetensors").model.state_dict()
    for k in saved:                                     # what is saved is the average (in 16 bits)
        torch.testing.assert_close(saved[k].float(), a2[k].float(), atol=2e-3, rtol=2e-3)
    distill(cfg, resume=True)                           # steps 3-4 after an interruption ...
    whole = distill(cfg.model_copy(update={"out": str(tmp_path / "b")}))       # ... equal one run
    a = load_weights(tmp_path / "a" / "last.safetensors").model.state_dict()
    b = load_weights(whole.last_path).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_weights(whole.last_path).metadata["training"]["ema"] == d
    with pytest.raises(ValueError):
        DistillConfig.model_validate({**cfg.model_dump(), "ema": 1.0})


def test_ema_flag_reaches_the_run(setup):
    tmp, teacher = setup
    r = CliRunner().invoke(app, ["distill", "--data", str(tmp / "data"), "--teacher", str(teacher), "-n", "2",
                                 "--ema", "0.5", "--out", str(tmp / "run"), "--cache", str(tmp / "c")] + TINY)
    assert r.exit_code == 0, r.output
    assert load_weights(tmp / "run" / "last.safetensors").metadata["training"]["ema"] == 0.5
    r = CliRunner().invoke(app, ["distill", "--data", str(tmp / "data"), "--teacher", str(teacher),
                                 "--ema", "1.5", "--out", str(tmp / "run2")] + TINY)
    assert r.exit_code != 0 and "ema" in r.output and "Traceback" not in r.output


def test_ensemble_targets_are_the_mean_of_each_teachers_cached_targets(setup, tmp_path):
    from sdap_cli.training.distill import ensemble_targets
    from sdap_cli.training.loop import setup as loop_setup

    tmp, teacher = setup
    other = tiny_weights(tmp_path / "other.safetensors", base_ch=6, num_module=2)     # another network
    cfg = DistillConfig(data=[str(tmp / "data")], teacher=teacher, ensemble=[other], targets=["teacher", "hflip"],
                        precision="fp32", device="cpu", workers=0)
    files = sorted((tmp / "data").iterdir())
    noisy, mean, computed, dens, facts = ensemble_targets(cfg, loop_setup(cfg), files, tmp_path / "c")
    assert computed == 2 * 2 * len(files) and [f["sha256"] for f in facts] == [sha(teacher), sha(other)]
    singles = [teacher_targets(d, k, files, tmp_path / "c", targets=("teacher", "hflip"))
               for d, k in zip(dens, [f"{f['sha256'][:12]}-e-fp32" for f in facts])]
    assert all(s[2] == 0 for s in singles)                                       # both read from the cache
    for i in range(len(files)):
        np.testing.assert_allclose(mean[i], (singles[0][1][i] + singles[1][1][i]) / 2, atol=1e-6)
        assert not np.allclose(singles[0][1][i], singles[1][1][i], atol=1e-3)    # the teachers differ
    assert ensemble_targets(cfg, loop_setup(cfg), files, tmp_path / "c")[2] == 0
    from sdap_cli.training.distill import MeanDenoiser
    y = noisy[0]
    np.testing.assert_allclose(MeanDenoiser(dens).denoise(y), (dens[0].denoise(y) + dens[1].denoise(y)) / 2,
                               atol=1e-6)


def test_ensemble_run_records_its_teachers_and_refuses_a_student(setup, tmp_path):
    tmp, teacher = setup
    other = tiny_weights(tmp_path / "other.safetensors", base_ch=6, num_module=2)
    base = ["distill", "--data", str(tmp / "data"), "--teacher", str(teacher), "--cache", str(tmp_path / "c"),
            "-n", "2", "--val", str(tmp / "val")] + TINY
    r = CliRunner().invoke(app, base + ["--ensemble", str(other), "--out", str(tmp_path / "r"), "--json"])
    assert r.exit_code == 0, r.output
    meta = load_weights(tmp_path / "r" / "last.safetensors").metadata["training"]
    assert [e["sha256"] for e in meta["teacher"]["ensemble"]] == [sha(other)]
    assert meta["teacher_outputs_computed"] == 2 * len(list((tmp / "data").iterdir()))
    student = tiny_student(tmp_path / "s.safetensors")
    r = CliRunner().invoke(app, base + ["--ensemble", str(student), "--out", str(tmp_path / "r2")])
    assert r.exit_code == 2 and "teacher must be a blind-spot DBSNl" in r.output and "Traceback" not in r.output


def test_distill_condition_trains_a_conditional_student_on_every_kind_of_target(setup):
    tmp, teacher = setup
    write_png(tmp / "clean" / "c.png", noisy_rgb(48, 48, seed=5))
    args = ["distill", "--data", str(tmp / "data"), "--teacher", str(teacher), "--light-teacher", str(teacher),
            "--condition", "--clean", str(tmp / "clean"), "--synthetic", "2", "--recolour", "1",
            "--cache", str(tmp / "cache"), "-n", "3", "--out", str(tmp / "run"),
            "--init", str(tiny_student(tmp / "s.safetensors"))] + TINY
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    lw = load_weights(tmp / "run" / "last.safetensors")
    assert lw.model.arch["cond_ch"] == 5 and lw.model.cond_ch == 5
    facts = lw.metadata["training"]["onepass"]
    assert sum(facts["paths"].values()) == 2 and facts["clean_entries"] == 6 and facts["repeat"] >= 1
    assert facts["recolour"] == 1                                   # the photo and its copy, each with 2 versions
    r = CliRunner().invoke(app, ["distill", "--data", str(tmp / "data"), "--clean", str(tmp / "clean")])
    assert r.exit_code == 2 and "--condition" in r.output
    r = CliRunner().invoke(app, ["distill", "--data", str(tmp / "data"), "--recolour", "1"])
    assert r.exit_code == 2 and "--clean" in r.output and "Traceback" not in r.output


def test_distill_fresh_noise_draws_the_clean_photos_noise_per_crop(setup):
    tmp, teacher = setup
    write_png(tmp / "clean" / "c.png", noisy_rgb(48, 48, seed=5))
    args = ["distill", "--data", str(tmp / "data"), "--teacher", str(teacher), "--light-teacher", str(teacher),
            "--condition", "--clean", str(tmp / "clean"), "--synthetic", "2", "--fresh-noise",
            "--cache", str(tmp / "cache"), "-n", "3", "--out", str(tmp / "fresh"),
            "--init", str(tiny_student(tmp / "s.safetensors"))] + TINY
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    facts = load_weights(tmp / "fresh" / "last.safetensors").metadata["training"]["onepass"]
    assert facts["fresh_noise"] is True and facts["clean_entries"] == 2   # the photo and its gray copy, not 1 + 2 entries
    assert facts["synthetic_kinds"] is None
    weighed = list(args) + ["--synthetic-kinds", "white=2,box=1"]
    weighed[weighed.index("--out") + 1] = str(tmp / "k")
    r = CliRunner().invoke(app, weighed)
    assert r.exit_code == 0, r.output
    assert load_weights(tmp / "k" / "last.safetensors").metadata["training"]["onepass"]["synthetic_kinds"] == {
        "white": 2.0, "box": 1.0}
    for kinds in ("white=2,gauss=1", "white:2"):
        r = CliRunner().invoke(app, args + ["--synthetic-kinds", kinds])
        assert r.exit_code == 2 and "--synthetic-kinds" in r.output and "Traceback" not in r.output, r.output
    r = CliRunner().invoke(app, [a for a in args if a != "--fresh-noise"] + ["--synthetic-kinds", "white=1"])
    assert r.exit_code == 2 and "--fresh-noise" in r.output
    bad = list(args)
    bad[bad.index("--synthetic") + 1] = "0"
    r = CliRunner().invoke(app, bad)
    assert r.exit_code == 2 and "--fresh-noise" in r.output and "Traceback" not in r.output


def _conditional_student(path, seed: int = 0):
    """A random noise-conditional StudentUNet (8, 8, 8) weights file."""
    from sdap_cli.inference.checkpoints import save_weights
    from sdap_cli.inference.noise import COND_CH

    torch.manual_seed(seed)
    net = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1), cond_ch=COND_CH)
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.05)
    return save_weights(path, net, training={"note": "test fixture"})


def _phone_like(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth photo under noise correlated 1 pixel apart and not 2 (``pd2``), std 20: it reads as the heavy
    path's noise (uint8)."""
    from sdap_cli.training.synthetic import add_noise

    base = noisy_rgb(h, w, seed=seed).astype(np.float32) * 0 + 0.5
    yy, xx = np.mgrid[0:h, 0:w]
    base = base + 0.2 * np.sin(xx / 9.0)[..., None]
    y = add_noise(base, "pd2", 20.0, np.random.default_rng(seed))
    return np.rint(y * 255).astype(np.uint8)


class _Recorder:
    """A stand-in for an AdaptiveDenoiser: returns its input plus a ramp fixed to the frame it is given (so
    each term differs until the ensemble's inverse maps bring it back), and records the estimates it is told."""

    def __init__(self):
        self.told = []

    @staticmethod
    def ramp(shape) -> np.ndarray:
        h, w = shape[:2]
        return 0.01 * np.arange(h * w, dtype=np.float32).reshape(h, w, 1) / (h * w)

    def denoise(self, image, noise=None):
        self.told.append(noise)
        return image + self.ramp(image.shape), None


def test_a_student_target_is_the_mean_of_its_terms_mapped_back_and_tells_the_scaled_reading():
    from sdap_cli.inference.noise import measure_noise
    from sdap_cli.training.targets import DIHEDRAL, _FLIPS, student_target  # noqa: PLC2701

    y = _phone_like(40, 56, 3).astype(np.float32) / 255           # not square: a transpose changes the frame
    same = (lambda a: a, lambda a: a)
    for n in (1, 2, 4, 8):
        rec = _Recorder()
        t = student_target(rec, y, n, told=1.1)
        assert t.shape == y.shape and t.dtype == np.float32 and len(rec.told) == n
        terms = []
        for name in DIHEDRAL[:n]:
            forward, back = _FLIPS.get(name, same)
            z = forward(y)
            terms.append(back(z + _Recorder.ramp(z.shape)))
        np.testing.assert_allclose(t, np.mean(terms, axis=0), atol=1e-6)
        if n > 1:                                               # the terms differ: it is a mean, not one of them
            assert np.abs(t - terms[0]).max() > 1e-4
    assert np.abs(t - y - _Recorder.ramp(y.shape)).max() > 1e-4
    est = measure_noise(y)
    told = rec.told[0]
    assert told.sigma == pytest.approx(1.1 * est.sigma) and told.rho1 == est.rho1 and told.rho2 == est.rho2
    np.testing.assert_allclose(told.nlf, 1.1 * np.asarray(est.nlf))
    with pytest.raises(ValueError):
        est.scaled(0)


def test_adaptive_denoiser_follows_a_given_estimate(tmp_path):
    from sdap_cli.inference.adaptive import AdaptiveDenoiser
    from sdap_cli.inference.denoiser import make_denoiser
    from sdap_cli.inference.noise import measure_noise

    lw = load_weights(_conditional_student(tmp_path / "c.safetensors"))
    den = make_denoiser(lw.model, device=torch.device("cpu"))
    ad = AdaptiveDenoiser(den, den)
    y = _phone_like(48, 48, 1).astype(np.float32) / 255
    est = measure_noise(y)
    a, da = ad.denoise(y)
    b, db = ad.denoise(y, noise=est)
    np.testing.assert_array_equal(a, b)                          # given what it measures: the same
    c, dc = ad.denoise(y, noise=est.scaled(1.5))
    assert dc.noise.sigma == pytest.approx(1.5 * da.noise.sigma)
    assert dc.network["told"]["sigma_channels"][0] == pytest.approx(1.5 * est.sigma_channels[0], abs=1e-3)
    assert not np.array_equal(a, c)                              # told more, it does something else
    assert ad.denoise(y, noise=est.scaled(0.01))[1].path == "clean"   # the path follows the estimate too


def test_self_targets_replace_the_heavy_images_targets_only_and_are_cached(setup):
    from sdap_cli.inference.adaptive import AdaptiveDenoiser, choose_path
    from sdap_cli.inference.denoiser import make_denoiser
    from sdap_cli.inference.noise import measure_noise
    from sdap_cli.io.images import read_image
    from sdap_cli.training.distill import student_target

    tmp, teacher = setup
    write_png(tmp / "data" / "phone.png", _phone_like(48, 64, 2))
    phone = read_image(tmp / "data" / "phone.png").rgb
    assert choose_path(measure_noise(phone)) == "heavy"             # the premise: it reads as phone noise
    assert choose_path(measure_noise(read_image(tmp / "data" / "n0.png").rgb)) != "heavy"
    student = _conditional_student(tmp / "cs.safetensors", seed=3)
    write_png(tmp / "clean" / "c.png", noisy_rgb(48, 48, seed=5))
    args = ["distill", "--data", str(tmp / "data"), "--teacher", str(teacher), "--light-teacher", str(teacher),
            "--condition", "--clean", str(tmp / "clean"), "--synthetic", "1", "--cache", str(tmp / "cache"),
            "-n", "2", "--out", str(tmp / "self"), "--init", str(student), "--self-targets", str(student),
            "--self-targets-ensemble", "2", "--self-targets-told", "1.1", "--json"] + TINY
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    facts = load_weights(tmp / "self" / "last.safetensors").metadata["training"]["onepass"]
    assert facts["self_targets"]["sha256"] == sha(student) and facts["self_targets"]["ensemble"] == 2
    assert facts["self_targets"]["told"] == 1.1 and facts["paths"]["heavy"] == 1
    cached = sorted((tmp / "cache").glob("phone-*-self-*-x2-t1.1-fp32.npy"))
    assert len(cached) == 1 and not list((tmp / "cache").glob("n0-*-self-*"))   # only the heavy image's
    lw = load_weights(student)
    ad = AdaptiveDenoiser(*(2 * [make_denoiser(lw.model, device=torch.device("cpu"))]))
    want = student_target(ad, phone, 2, 1.1)
    np.testing.assert_allclose(np.load(cached[0]).astype(np.float32), want, atol=2e-3)   # float16 in the cache
    before = cached[0].stat().st_mtime_ns
    args[args.index("--out") + 1] = str(tmp / "self2")
    assert CliRunner().invoke(app, args).exit_code == 0
    assert cached[0].stat().st_mtime_ns == before                   # read back, not computed again
    plain = [a for a in args if a != "--condition"]
    del plain[plain.index("--clean"):plain.index("--clean") + 4]       # --clean and --synthetic need it too
    r = CliRunner().invoke(app, plain)
    assert r.exit_code == 2 and "--self-targets" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, args[:args.index("--self-targets") + 1] + [str(tiny_student(tmp / "u.safetensors"))]
                           + args[args.index("--self-targets") + 2:])
    assert r.exit_code != 0 and "noise-conditional" in r.output and "Traceback" not in r.output
