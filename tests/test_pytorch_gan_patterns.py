"""GAN training written the way popular PyTorch scripts write it runs on minigan unchanged.

Each test spells a training step in the idioms such scripts use (`Variable(...)`, the legacy
`Tensor(n, 1).fill_(1.0)` constructor picked by `torch.cuda.is_available()`, `.data`
in-place updates, `autograd.grad(...)[0]`, `.apply(init_fn)`), with `mg` standing where
those scripts have `torch`. Tiny shapes, a few steps.

Tolerances: float64 comparisons allow 1e-10 relative: the same formulas summed in another
order, through a few layers, two optimizer steps and a second derivative, stay within a few
hundred ulps (2e-16 each).
"""

from __future__ import annotations

import numpy as np
import pytest

import minigan as mg
import minigan.autograd as autograd
import minigan.nn as nn
from minigan.autograd import Variable

F64 = dict(rtol=1e-10, atol=1e-12)
LATENT, PIXELS, CLASSES = 6, 12, 3


def _mlp_generator(nn_module, in_features: int):
    return nn_module.Sequential(
        nn_module.Linear(in_features, 16), nn_module.LeakyReLU(0.2, inplace=True),
        nn_module.Linear(16, 16), nn_module.BatchNorm1d(16, 0.8),
        nn_module.LeakyReLU(0.2, inplace=True),
        nn_module.Linear(16, PIXELS), nn_module.Tanh(),
    )


def _mlp_discriminator(nn_module, in_features: int, sigmoid: bool):
    layers = [nn_module.Linear(in_features, 16), nn_module.LeakyReLU(0.2, inplace=True),
              nn_module.Linear(16, 1)]
    return nn_module.Sequential(*layers, *([nn_module.Sigmoid()] if sigmoid else []))


# ----------------------------------------------------------------------------- the names


def test_variable_is_the_tensor_detached_as_in_torch():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    v = Variable(y)
    # a new leaf over the same storage: no graph, no grad unless asked (torch 2 agrees)
    assert v is not y and v.is_leaf and not v.requires_grad
    assert isinstance(y, Variable) and isinstance(v, mg.Tensor)
    w = Variable(mg.zeros(2), requires_grad=True)
    assert w.requires_grad and w.is_leaf
    v.add_(1.0)  # shared storage: y sees the change
    np.testing.assert_array_equal(y.numpy(), [4.0, 7.0])
    with pytest.raises(TypeError, match="Variable: data has to be a Tensor, got int"):
        Variable(3)
    with pytest.raises(RuntimeError, match="floating-point"):
        Variable(mg.LongTensor([1, 2]), requires_grad=True)


def test_cuda_availability_picks_the_tensor_type_as_scripts_expect():
    cuda = True if mg.cuda.is_available() else False
    assert cuda == ("cuda" in mg.available_devices())
    Tensor = mg.cuda.FloatTensor if cuda else mg.FloatTensor
    t = Tensor(4, 1).fill_(1.0)
    assert t.shape == (4, 1) and t.dtype == np.float32
    assert t.device == ("cuda" if cuda else mg.default_device())
    assert isinstance(t, Tensor) and isinstance(t, mg.cuda.FloatTensor) == cuda
    if not cuda:
        # the names exist; calling one says why it cannot work here
        with pytest.raises(RuntimeError, match=r"minigan\.cuda\.LongTensor: device 'cuda' is "
                                               r"unavailable"):
            mg.cuda.LongTensor(2)
        assert mg.cuda.device_count() == 0


@pytest.mark.skipif(not mg.cuda.is_available(), reason="needs a usable CUDA GPU")
def test_cuda_tensor_types_live_on_the_gpu():
    t = mg.cuda.LongTensor(np.arange(3))
    assert t.device == "cuda" and t.dtype == np.int64
    moved = mg.tensor(np.ones((2, 2))).type(mg.cuda.FloatTensor)
    assert moved.device == "cuda" and moved.dtype == np.float32
    assert mg.cuda.device_count() >= 1


# ----------------------------------------------------------------------------- the steps


def test_gan_step_written_the_scripts_way_trains():
    np.random.seed(0)
    mg.manual_seed(0)
    cuda = True if mg.cuda.is_available() else False
    Tensor = mg.cuda.FloatTensor if cuda else mg.FloatTensor
    generator, discriminator = _mlp_generator(nn, LATENT), _mlp_discriminator(nn, PIXELS, True)
    if cuda:
        generator.cuda()
        discriminator.cuda()
    adversarial_loss = mg.nn.BCELoss()
    optimizer_G = mg.optim.Adam(generator.parameters(), lr=0.01, betas=(0.5, 0.999))
    optimizer_D = mg.optim.Adam(discriminator.parameters(), lr=0.01, betas=(0.5, 0.999))
    before = [p.detach().clone() for p in generator.parameters()]
    imgs = mg.from_numpy(np.random.uniform(-1, 1, (8, PIXELS)))  # float64, as data may be
    g_losses = []
    for _ in range(3):
        valid = Variable(Tensor(imgs.size(0), 1).fill_(1.0), requires_grad=False)
        fake = Variable(Tensor(imgs.size(0), 1).fill_(0.0), requires_grad=False)
        real_imgs = Variable(imgs.type(Tensor))
        optimizer_G.zero_grad()
        z = Variable(Tensor(np.random.normal(0, 1, (imgs.shape[0], LATENT))))
        gen_imgs = generator(z)
        g_loss = adversarial_loss(discriminator(gen_imgs), valid)
        g_loss.backward()
        optimizer_G.step()
        optimizer_D.zero_grad()
        real_loss = adversarial_loss(discriminator(real_imgs), valid)
        fake_loss = adversarial_loss(discriminator(gen_imgs.detach()), fake)
        d_loss = (real_loss + fake_loss) / 2
        d_loss.backward()
        optimizer_D.step()
        assert np.isfinite(d_loss.item()) and np.isfinite(g_loss.item())
        g_losses.append(g_loss.item())
    assert real_imgs.dtype == np.float32 and len(set(g_losses)) == 3
    assert all(not np.array_equal(p.numpy(), b.numpy())
               for p, b in zip(generator.parameters(), before))


def test_weight_clipping_through_data_reaches_the_optimizer():
    discriminator = _mlp_discriminator(nn, PIXELS, False)
    optimizer_D = mg.optim.RMSprop(discriminator.parameters(), lr=0.05)
    x = mg.FloatTensor(np.random.default_rng(1).normal(size=(8, PIXELS)))
    for _ in range(2):
        optimizer_D.zero_grad()
        loss_D = -mg.mean(discriminator(x))
        loss_D.backward()
        optimizer_D.step()
        for p in discriminator.parameters():
            p.data.clamp_(-0.01, 0.01)
    # a step with zero gradients moves nothing; had the optimizer kept its own copy of the
    # unclipped values, it would write them back here
    optimizer_D.zero_grad(set_to_none=False)
    optimizer_D.step()
    for p in discriminator.parameters():
        assert np.abs(p.numpy()).max() <= 0.01
    assert np.abs(discriminator[0].weight.numpy()).max() == pytest.approx(0.01)


def test_init_by_class_name_through_apply():
    def weights_init_normal(m):
        classname = m.__class__.__name__
        if classname.find("Conv") != -1:
            mg.nn.init.normal_(m.weight.data, 0.0, 0.02)
        elif classname.find("BatchNorm2d") != -1:
            mg.nn.init.normal_(m.weight.data, 1.0, 0.02)
            mg.nn.init.constant_(m.bias.data, 0.0)

    mg.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(4, 64, 3), nn.BatchNorm2d(64), nn.Linear(4, 4))
    linear_before = model[2].weight.numpy().copy()
    model.apply(weights_init_normal)
    conv, bn = model[0].weight.numpy(), model[1]
    # 2,304 draws of N(0, 0.02): the sample std is within 10% of 0.02 with certainty
    # (its relative standard error is 1/sqrt(2 * 2304) = 1.5%)
    assert abs(conv.std() - 0.02) < 0.002 and abs(conv.mean()) < 0.002
    assert not np.allclose(bn.weight.numpy(), 1.0) and abs(bn.weight.numpy().mean() - 1) < 0.02
    np.testing.assert_array_equal(bn.bias.numpy(), 0.0)
    np.testing.assert_array_equal(model[2].weight.numpy(), linear_before)


def _gradient_penalty_scripts_way(D, real_samples, fake_samples, Tensor):
    """The penalty as WGAN-GP scripts write it: one autograd.grad over the whole batch."""
    alpha = Tensor(np.random.random((real_samples.size(0), 1, 1, 1)))
    interpolates = (alpha * real_samples + ((1 - alpha) * fake_samples)).requires_grad_(True)
    d_interpolates = D(interpolates)
    fake = Variable(Tensor(real_samples.shape[0], 1).fill_(1.0), requires_grad=False)
    gradients = autograd.grad(outputs=d_interpolates, inputs=interpolates, grad_outputs=fake,
                              create_graph=True, retain_graph=True, only_inputs=True)[0]
    gradients = gradients.view(gradients.size(0), -1)
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean(), interpolates


class _FlatCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = _mlp_discriminator(nn, PIXELS, False)

    def forward(self, img):
        return self.model(img.view(img.shape[0], -1))


def test_wgan_gp_penalty_the_scripts_way_equals_the_per_sample_definition():
    np.random.seed(4)
    mg.manual_seed(4)
    D = _FlatCritic().double()
    real = mg.DoubleTensor(np.random.uniform(-1, 1, (5, 1, 3, 4)))
    fake = mg.DoubleTensor(np.random.uniform(-1, 1, (5, 1, 3, 4)))
    penalty, interpolates = _gradient_penalty_scripts_way(D, real, fake, mg.DoubleTensor)
    by_hand = []
    for i in range(5):  # Gulrajani et al. 2017, Algorithm 1: (||grad D(x_hat_i)|| - 1)^2
        x_i = interpolates[i:i + 1].detach().requires_grad_(True)
        (g_i,) = mg.grad(D(x_i).sum(), x_i)
        by_hand.append((np.linalg.norm(g_i.numpy()) - 1.0) ** 2)
    np.testing.assert_allclose(penalty.item(), np.mean(by_hand), **F64)
    assert np.std(by_hand) > 1e-3  # the samples differ: sample 0's penalty alone would not do
    penalty.backward()  # second order: the penalty trains D's weights
    for name in ("model.0.weight", "model.2.weight"):
        assert np.abs(dict(D.named_parameters())[name].grad.numpy()).max() > 0


# ----------------------------------------------------------------------------- against torch


def _copy_into_torch(model, torch_model, torch):
    state = {k: torch.tensor(v) for k, v in model.state_dict().items()}
    torch_model.load_state_dict(state)


def test_conditional_steps_match_torch_with_the_same_weights():
    torch = pytest.importorskip("torch", reason="compares with PyTorch")

    def build(nn_module, framework):
        class Generator(nn_module.Module):
            def __init__(self):
                super().__init__()
                self.label_emb = nn_module.Embedding(CLASSES, CLASSES)
                self.model = _mlp_generator(nn_module, LATENT + CLASSES)

            def forward(self, noise, labels):
                gen_input = framework.cat((self.label_emb(labels), noise), -1)
                return self.model(gen_input).view(noise.size(0), 1, 3, 4)

        class Discriminator(nn_module.Module):
            def __init__(self):
                super().__init__()
                self.label_embedding = nn_module.Embedding(CLASSES, CLASSES)
                self.model = _mlp_discriminator(nn_module, PIXELS + CLASSES, False)

            def forward(self, img, labels):
                d_in = framework.cat((img.view(img.size(0), -1), self.label_embedding(labels)),
                                     -1)
                return self.model(d_in)

        return Generator().double(), Discriminator().double()

    def train(framework, generator, discriminator, data):
        FloatTensor, LongTensor = framework.DoubleTensor, framework.LongTensor
        adversarial_loss = framework.nn.MSELoss()
        optimizer_G = framework.optim.Adam(generator.parameters(), lr=0.01, betas=(0.5, 0.999))
        optimizer_D = framework.optim.Adam(discriminator.parameters(), lr=0.01,
                                           betas=(0.5, 0.999))
        losses = []
        for imgs, labels, noise, gen_labels in data:
            batch_size = imgs.shape[0]
            valid = Variable_of(framework)(FloatTensor(batch_size, 1).fill_(1.0),
                                           requires_grad=False)
            fake = Variable_of(framework)(FloatTensor(batch_size, 1).fill_(0.0),
                                          requires_grad=False)
            real_imgs = FloatTensor(imgs)
            labels = LongTensor(labels).type(LongTensor)
            optimizer_G.zero_grad()
            z = FloatTensor(noise)
            gen_labels = LongTensor(gen_labels)
            gen_imgs = generator(z, gen_labels)
            g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
            g_loss.backward()
            optimizer_G.step()
            optimizer_D.zero_grad()
            d_real_loss = adversarial_loss(discriminator(real_imgs, labels), valid)
            d_fake_loss = adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)
            d_loss = (d_real_loss + d_fake_loss) / 2
            d_loss.backward()
            optimizer_D.step()
            losses.append((g_loss.item(), d_loss.item()))
        return losses

    def Variable_of(framework):
        return Variable if framework is mg else torch.autograd.Variable

    rng = np.random.default_rng(5)
    data = [(rng.uniform(-1, 1, (6, 1, 3, 4)), rng.integers(0, CLASSES, 6),
             rng.normal(size=(6, LATENT)), rng.integers(0, CLASSES, 6)) for _ in range(2)]
    mg_G, mg_D = build(nn, mg)
    torch_G, torch_D = build(torch.nn, torch)
    _copy_into_torch(mg_G, torch_G, torch)
    _copy_into_torch(mg_D, torch_D, torch)
    np.testing.assert_allclose(train(mg, mg_G, mg_D, data), train(torch, torch_G, torch_D, data),
                               **F64)
    # A bias followed by batch norm has a zero gradient in exact arithmetic; the computed one
    # is rounding noise g ~ 1e-17, which Adam turns into a step of lr g / (|g| + eps) <=
    # 0.01 * 1e-17 / 1e-8 = 1e-11 per step: hence the absolute 1e-10 on the weights.
    for name, value in torch_G.state_dict().items():
        np.testing.assert_allclose(mg_G.state_dict()[name], value.numpy(), rtol=1e-10,
                                   atol=1e-10, err_msg=name)


def test_wgan_gp_penalty_and_its_gradient_match_torch():
    torch = pytest.importorskip("torch", reason="compares with PyTorch")

    class TorchCritic(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = _mlp_discriminator(torch.nn, PIXELS, False)

        def forward(self, img):
            return self.model(img.view(img.shape[0], -1))

    D, torch_D = _FlatCritic().double(), TorchCritic().double()
    _copy_into_torch(D, torch_D, torch)
    rng = np.random.default_rng(6)
    real, fake = rng.uniform(-1, 1, (2, 5, 1, 3, 4))
    np.random.seed(6)
    penalty, _ = _gradient_penalty_scripts_way(D, mg.DoubleTensor(real), mg.DoubleTensor(fake),
                                               mg.DoubleTensor)
    np.random.seed(6)  # the same alpha
    alpha = torch.tensor(np.random.random((5, 1, 1, 1)))
    interpolates = (alpha * torch.tensor(real) + (1 - alpha) * torch.tensor(fake))
    interpolates.requires_grad_(True)
    gradients = torch.autograd.grad(torch_D(interpolates), interpolates,
                                    grad_outputs=torch.ones(5, 1, dtype=torch.float64),
                                    create_graph=True)[0].view(5, -1)
    torch_penalty = ((gradients.norm(2, dim=1) - 1) ** 2).mean()
    penalty.backward()
    torch_penalty.backward()
    np.testing.assert_allclose(penalty.item(), torch_penalty.item(), **F64)
    for (name, p), tp in zip(D.named_parameters(), torch_D.parameters()):
        # dD/dx does not depend on the biases (LeakyReLU's slope is piecewise constant):
        # torch gives the first one a zero gradient, minigan none; both mean no change
        value = 0.0 if p.grad is None else p.grad.numpy()
        torch_value = 0.0 if tp.grad is None else tp.grad.numpy()
        np.testing.assert_allclose(value, torch_value, **F64, err_msg=name)
