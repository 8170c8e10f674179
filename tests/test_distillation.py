"""Distillation: the loss, the teacher S6's committed networks make, and a distilled run."""

import pytest
import torch
from conftest import ROOT, SMALL, WEIGHTS, assert_one_line_error, without_seconds

from s6.checkpoints import CheckpointError
from s6.distillation import Teacher, build_teacher, distillation_loss, load_network, teacher_files
from s6.training import fit
from s6_model import MicroNet, Net
from s6_utils import TrainConfig

RESULTS = ROOT / "results"


@pytest.fixture(scope="module")
def images():
    return torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def test_the_loss_mixes_the_label_loss_with_t_squared_times_the_kl_divergence_from_the_teacher():
    logits = torch.randn(8, 10, generator=torch.Generator().manual_seed(0))
    teacher_probs = torch.randn(8, 10, generator=torch.Generator().manual_seed(1)).softmax(1)
    label_loss = torch.tensor(0.7)
    student_probs = (logits / 3).softmax(1)  # at T = 3
    # KL(teacher || student) = sum of p log(p / q) over the classes, averaged over the batch
    kl = (teacher_probs * (teacher_probs / student_probs).log()).sum(1).mean()
    loss = distillation_loss(logits.log_softmax(1), teacher_probs, label_loss, temperature=3.0, mix=0.25)
    assert torch.allclose(loss, 0.75 * 0.7 + 0.25 * 9 * kl)


def test_a_distillation_step_moves_the_student_towards_the_teachers_probabilities(images):
    teacher = Teacher([load_network(WEIGHTS, "cpu")])
    targets = teacher(images, temperature=4.0)
    assert not targets.requires_grad
    student = MicroNet()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)

    def soft_loss():
        return distillation_loss(student(images), targets, torch.tensor(0.0), temperature=4.0, mix=1.0)
    before = soft_loss()
    for _ in range(3):
        optimizer.zero_grad()
        soft_loss().backward()
        optimizer.step()
    assert soft_loss() < before


def test_a_seeds_folder_is_the_mean_of_its_seeds_probabilities(images):
    files = teacher_files(RESULTS / "net")
    assert files == [RESULTS / f"net-seed{seed}" / "model.pt" for seed in range(1, 6)]
    members = [load_network(file, "cpu") for file in files[:2]]
    probs = Teacher(members)(images, temperature=2.0)
    assert probs.shape == (16, 10) and torch.allclose(probs.sum(1), torch.ones(16))
    alone = [Teacher([member])(images, temperature=2.0) for member in members]
    assert torch.allclose(probs, (alone[0] + alone[1]) / 2)


def test_a_teachers_class_is_recognised_from_its_weights(tmp_path):
    assert isinstance(load_network(WEIGHTS, "cpu"), Net)
    assert isinstance(load_network(RESULTS / "micro-seed1" / "model.pt", "cpu"), MicroNet)
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="none of the models"):
        load_network(tmp_path / "model.pt", "cpu")


def test_the_teachers_bf16_probabilities_are_its_fp32_ones_to_within_a_hundredth(images):
    fp32 = build_teacher(TrainConfig(teacher=str(WEIGHTS), precision="fp32", device="cpu"), "cpu")
    bf16 = build_teacher(TrainConfig(teacher=str(WEIGHTS), precision="bf16", device="cpu"), "cpu")
    assert (fp32(images, 4.0) - bf16(images, 4.0)).abs().max() < 0.01


def test_a_teacher_that_trained_on_the_validation_images_is_refused_and_one_that_held_them_out_is_not():
    with pytest.raises(ValueError, match="has seen this run's 10,000 validation images"):
        build_teacher(TrainConfig(teacher=str(RESULTS / "net"), val_split=10_000), "cpu")
    with pytest.raises(ValueError, match="has seen this run's 20,000 validation images"):
        build_teacher(TrainConfig(teacher=str(RESULTS / "validation/kd-teacher"), val_split=20_000), "cpu")
    held_out = build_teacher(TrainConfig(teacher=str(RESULTS / "validation/kd-teacher"), val_split=5_000), "cpu")
    assert len(held_out.members) == 5  # seeds 1 to 5, each trained with --val-split 10000


def test_a_run_with_a_teacher_weighted_zero_is_the_plain_run(small_config, small_run):
    _, plain, _ = small_run
    lines = []
    _, distilled = fit(small_config(teacher=str(WEIGHTS), distill_mix=0.0), progress=False, log=lines.append)
    assert f"teacher: {WEIGHTS} (networks: 1)" in lines[1]
    assert without_seconds(distilled) == without_seconds(plain)


def test_a_missing_teacher_is_a_one_line_error(run_in_process, tmp_path):
    result = run_in_process("s6_train.py", *SMALL, "--teacher", tmp_path / "nowhere", "--out", tmp_path / "run")
    assert_one_line_error(result)
    assert "nowhere: no such file" in result.stderr
