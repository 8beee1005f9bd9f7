"""optim.lr_scheduler against torch.optim.lr_scheduler step by step (when PyTorch is
installed), the stepping rules, state_dict round trips, and the trainer's linear decay."""

import warnings

import numpy as np
import pytest

import minigan as mg
from minigan import optim
from minigan.gan import Trainer, recipe
from minigan.optim import lr_scheduler

SCHEDULES = [
    ("LambdaLR", dict(lr_lambda=lambda epoch: 0.95 ** epoch + 0.01 * (epoch % 3))),
    ("StepLR", dict(step_size=4, gamma=0.5)),
    ("LinearLR", dict(start_factor=0.25, end_factor=0.9, total_iters=7)),
    ("CosineAnnealingLR", dict(T_max=6, eta_min=0.01)),
    ("ExponentialLR", dict(gamma=0.9)),
]


def _optimizers(lrs=(0.1, 0.03)):
    """A minigan and a torch SGD with two param groups of the given lrs."""
    groups = [{"params": [mg.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    return optim.SGD(groups, lr=1.0)


@pytest.mark.parametrize("name, kwargs", SCHEDULES)
def test_schedules_match_torch_step_by_step(name, kwargs):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    mine_opt = _optimizers()
    theirs_opt = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": lr}
                                  for lr in (0.1, 0.03)], lr=1.0)
    mine = getattr(lr_scheduler, name)(mine_opt, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(theirs_opt, **kwargs)
    assert mine.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-15)
    for epoch in range(25):  # past T_max, total_iters and several StepLR drops
        mine_opt.step()
        theirs_opt.step()
        mine.step()
        theirs.step()
        # the same float64 operations in the same order: equal to the last bit or two
        np.testing.assert_allclose(mine.get_last_lr(), theirs.get_last_lr(), rtol=1e-14,
                                   err_msg=f"{name}, epoch {epoch + 1}")
        assert [g["lr"] for g in mine_opt.param_groups] == mine.get_last_lr()
        assert mine.last_epoch == theirs.last_epoch == epoch + 1


@pytest.mark.parametrize("name, kwargs", SCHEDULES)
def test_state_dict_continues_exactly(name, kwargs):
    whole_opt = _optimizers()
    whole = getattr(lr_scheduler, name)(whole_opt, **kwargs)
    part_opt = _optimizers()
    part = getattr(lr_scheduler, name)(part_opt, **kwargs)
    for _ in range(9):
        for o, s in ((whole_opt, whole), (part_opt, part)):
            o.step()
            s.step()
    saved_opt, saved = part_opt.state_dict(), part.state_dict()
    assert "optimizer" not in saved and saved["last_epoch"] == 9
    # PyTorch's order: build both afresh, then load both (the optimizer's groups bring back
    # lr and initial_lr, the scheduler's state last_epoch and base_lrs)
    resumed_opt = _optimizers(lrs=(0.5, 0.5))
    resumed = getattr(lr_scheduler, name)(resumed_opt, **kwargs)
    resumed_opt.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)
    for _ in range(12):
        for o, s in ((whole_opt, whole), (resumed_opt, resumed)):
            o.step()
            s.step()
        assert resumed.get_last_lr() == whole.get_last_lr()  # bit for bit


@pytest.mark.parametrize("name, kwargs", SCHEDULES)
def test_resuming_mid_schedule_needs_initial_lr_and_matches_torch(name, kwargs):
    with pytest.raises(KeyError, match=r"'initial_lr' is not specified in param_groups\[0\]"):
        getattr(lr_scheduler, name)(_optimizers(), last_epoch=3, **kwargs)
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    mine_opt = _optimizers()
    theirs_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    for group in mine_opt.param_groups + theirs_opt.param_groups:
        group["initial_lr"] = 0.2
    mine = getattr(lr_scheduler, name)(mine_opt, last_epoch=7, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(theirs_opt, last_epoch=7, **kwargs)
    for _ in range(10):
        np.testing.assert_allclose(mine.get_last_lr()[0], theirs.get_last_lr()[0], rtol=1e-14)
        mine_opt.step()
        theirs_opt.step()
        mine.step()
        theirs.step()


def test_stepping_the_schedule_before_the_optimizer_warns_as_in_torch():
    opt = _optimizers()
    scheduler = lr_scheduler.StepLR(opt, step_size=1)
    with pytest.warns(UserWarning, match=r"step\(\) was called before optimizer.step\(\)"):
        scheduler.step()
    opt = _optimizers()
    scheduler = lr_scheduler.StepLR(opt, step_size=1)
    opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scheduler.step()


def test_lambda_lr_saves_callable_objects_but_not_functions():
    class Halving:
        def __init__(self):
            self.rate = 0.5

        def __call__(self, epoch):
            return self.rate ** epoch

    opt = _optimizers()
    halving = Halving()
    scheduler = lr_scheduler.LambdaLR(opt, [halving, lambda epoch: 1.0])
    assert scheduler.state_dict()["lr_lambdas"] == [{"rate": 0.5}, None]
    other = Halving()
    other.rate = 0.9
    lr_scheduler.LambdaLR(_optimizers(), [other, lambda e: 1.0]).load_state_dict(
        scheduler.state_dict())
    assert other.rate == 0.5
    with pytest.raises(ValueError, match="expected 2 lr_lambdas"):
        lr_scheduler.LambdaLR(opt, [halving])


def test_trainer_linear_decay_is_a_lambda_lr_with_the_documented_values():
    config = recipe("mlp-ring8", steps=8, batch_size=16, hidden=8, layers=1,
                    lr_schedule="linear", lr_g=1e-3, lr_d=2e-3)
    trainer = Trainer(config, device="numpy", quiet=True)
    assert all(isinstance(s, lr_scheduler.LambdaLR) for s in trainer.schedulers)
    seen = []
    for _ in range(8):
        trainer.step()
        seen.append(trainer.optimizer_g.param_groups[0]["lr"])
    # constant for the first half (steps 1..4), then (8 - step) / 4 of the base
    assert seen == [1e-3 * f for f in (1, 1, 1, 1, 0.75, 0.5, 0.25, 0.0)]
    assert trainer.optimizer_d.param_groups[0]["lr"] == 0.0
    saved = trainer.state_dict()["schedulers"]
    assert [s["last_epoch"] for s in saved] == [8, 8]
