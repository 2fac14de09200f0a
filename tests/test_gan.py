"""The two-level GAN: networks, the information bound, both TC estimators against closed forms, the
gradient isolation of the permutation discriminator, training, resuming, the command line and the
complex-level measurements."""

import json
import math
import os
import signal

import numpy as np
import pytest
import torch

from disentangle import data, family, gan, losses, metrics, nets, train
from disentangle.cli import main
from disentangle.gan import Discriminator, GanSettings, Generator
from disentangle.gan import training as gan_training
from disentangle.metrics import gaussian_total_correlation_from_cov


@pytest.mark.parametrize("size", [28, 32, 64])
def test_networks_fit_every_image_size(size):
    generator = Generator(7, (1, size, size))
    images = generator(torch.randn(5, 7))
    assert images.shape == (5, 1, size, size)
    assert images.min() >= 0 and images.max() <= 1
    out = Discriminator(3, (4,), (1, size, size))(images)
    assert out["logit"].shape == (5,)
    assert out["mean"].shape == out["log_var"].shape == (5, 3)
    assert [c.shape for c in out["categorical"]] == [(5, 4)]


def test_networks_reject_bad_shapes():
    with pytest.raises(ValueError, match="28, 32 or 64"):
        Generator(4, (1, 48, 48))
    with pytest.raises(ValueError, match=r"latents \(N, 4\)"):
        Generator(4, (1, 32, 32))(torch.zeros(2, 5))


def test_spectral_norm_initialises_the_real_weight():
    disc = Discriminator(2, image_shape=(1, 32, 32))
    first = disc.trunk[0]
    original = first.parametrizations.weight.original
    assert abs(float(original.detach().std()) - 0.02) < 0.005
    disc.train()
    for _ in range(20):  # power iterations run on each training forward pass
        disc(torch.rand(2, 1, 32, 32))
    sigma = torch.linalg.matrix_norm(first.weight.detach().flatten(1), ord=2)
    assert abs(float(sigma) - 1.0) < 0.05


def test_infogan_bound_matches_the_log_densities():
    torch.manual_seed(0)
    mean, log_var, codes = torch.randn(6, 3), torch.randn(6, 3) * 0.3, torch.rand(6, 3) * 2 - 1
    logits, classes = torch.randn(6, 4), torch.randint(0, 4, (6, 1))
    out = gan.infogan_bound(mean, log_var, codes, [logits], classes)
    normal = torch.distributions.Normal(mean, (0.5 * log_var).exp())
    continuous = -normal.log_prob(codes).sum(1).mean()
    categorical = -torch.log_softmax(logits, 1).gather(1, classes).mean()
    assert torch.allclose(out["continuous"], continuous, atol=1e-5)
    assert torch.allclose(out["categorical"], categorical, atol=1e-5)
    entropy = 3 * math.log(2) + math.log(4)
    assert gan.code_entropy(3, [4]) == pytest.approx(entropy)
    assert float(out["bound"]) == pytest.approx(entropy - float(continuous + categorical), abs=1e-5)


def _posterior_codes(means: torch.Tensor, sigma: float) -> tuple[torch.Tensor, ...]:
    log_var = torch.full_like(means, math.log(sigma**2))
    return means + sigma * torch.randn_like(means), means, log_var


def _correlated(n: int, rho: float = 0.9) -> tuple[torch.Tensor, np.ndarray]:
    cov = torch.eye(5)
    cov[0, 1] = cov[1, 0] = rho
    return torch.randn(n, 5) @ torch.linalg.cholesky(cov).T, cov.numpy()


def test_minibatch_weighted_tc_is_near_zero_on_independent_codes():
    torch.manual_seed(0)
    samples, means, log_var = _posterior_codes(torch.rand(4096, 5) * 2 - 1, 0.3)
    assert abs(float(losses.tc_minibatch_weighted(samples, means, log_var))) < 0.05


def test_minibatch_weighted_tc_matches_the_gaussian_closed_form():
    torch.manual_seed(0)
    means, cov = _correlated(4096)
    means = means * 0.5
    samples, means, log_var = _posterior_codes(means, 0.3)
    # q(c) is then N(0, 0.25 cov + 0.09 I), whose TC has a closed form (about 0.288 nats).
    closed = gaussian_total_correlation_from_cov(0.25 * cov + 0.09 * np.eye(5))
    estimate = float(losses.tc_minibatch_weighted(samples, means, log_var))
    assert closed > 0.25
    assert estimate == pytest.approx(closed, abs=0.05)


def test_minibatch_weighted_tc_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        losses.tc_minibatch_weighted(torch.zeros(4, 2), torch.zeros(4, 3), torch.zeros(4, 3))


def _fit_critic(sample, steps: int = 600) -> float:
    torch.manual_seed(1)
    critic = nets.Critic(5, hidden=64, layers=2)
    optimizer = torch.optim.Adam(critic.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = losses.permutation_discriminator_loss(critic, sample(512))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float(losses.tc_density_ratio(critic, sample(20_000)))


def test_density_ratio_tc_is_near_zero_on_independent_codes():
    assert abs(_fit_critic(lambda n: torch.rand(n, 5) * 2 - 1)) < 0.05


def test_density_ratio_tc_matches_the_gaussian_closed_form():
    closed = gaussian_total_correlation_from_cov(_correlated(1)[1])  # -0.5 ln(1 - 0.81)
    assert closed == pytest.approx(0.8304, abs=1e-4)
    assert _fit_critic(lambda n: _correlated(n)[0]) == pytest.approx(closed, abs=0.1)


def test_permute_dims_shuffles_each_column_on_its_own():
    codes = torch.arange(40.0).view(10, 4)
    permuted = losses.permute_dims(codes, torch.Generator().manual_seed(0))
    for k in range(4):
        assert sorted(permuted[:, k].tolist()) == codes[:, k].tolist()
    assert not torch.equal(permuted, codes)


def _tiny(model: str = "tcgan", **overrides) -> gan.TwoLevelGAN:
    settings = dict(model=model, noise_dim=2, code_dim=3, resolution=28, steps=4, batch_size=8)
    return gan.TwoLevelGAN(GanSettings(**{**settings, **overrides}))


def test_the_permutation_discriminator_update_leaves_generator_and_q_gradients_untouched():
    torch.manual_seed(0)
    model = _tiny(estimator="drt")
    noise, codes, _ = model.sample_codes(8, torch.device("cpu"))
    out = model.discriminator(model.generator(model.latent(noise, codes)))
    samples = out["mean"] + torch.randn_like(out["mean"]) * (0.5 * out["log_var"]).exp()
    players = [*model.generator.parameters(), *model.discriminator.head_parameters("q")]
    # The generator's own TC term does reach G and Q (so the check below can fail)...
    losses.tc_density_ratio(model.tc_critic, samples).backward(retain_graph=True)
    before = [p.grad.clone() for p in players]
    assert any(float(g.abs().sum()) > 0 for g in before)
    # ...but T's loss, on the same codes, adds nothing to their gradients.
    losses.permutation_discriminator_loss(model.tc_critic, samples).backward()
    assert all(torch.equal(p.grad, g) for p, g in zip(players, before))
    assert any(p.grad is not None for p in model.tc_critic.parameters())


def test_ground_truth_data_are_named():
    with pytest.raises(ValueError, match="valid names"):
        data.load_ground_truth("cifar", "smoke")


@pytest.mark.parametrize("estimator", ["mws", "drt"])
def test_training_resumes_exactly_where_it_was_interrupted(tmp_path, monkeypatch, estimator):
    run = GanSettings.for_profile("smoke", estimator=estimator, steps=6, batch_size=8)
    cpu = torch.device("cpu")
    first = family.train_run(gan.FAMILY, run, "smoke", tmp_path / "a", cpu, progress=False)
    straight, history = first.model, first.history
    assert set(history.terms) >= {"d_loss", "adversarial", "info_nll", "tc_mws", "total"}
    assert ("tc_drt" in history.terms) == (estimator == "drt")

    # Ctrl-C in the middle of the fourth step: the loop finishes that step, checkpoints and
    # stops; the same call again resumes from the checkpoint.
    original, calls = gan_training.gan_step, []

    def interrupted(*args, **kwargs):
        inner = original(*args, **kwargs)

        def step(batch):
            calls.append(1)
            if len(calls) == 4:
                os.kill(os.getpid(), signal.SIGINT)
            return inner(batch)

        return step

    monkeypatch.setattr(gan_training, "gan_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        family.train_run(gan.FAMILY, run, "smoke", tmp_path / "b", cpu, progress=False)
    monkeypatch.setattr(gan_training, "gan_step", original)
    second = family.train_run(gan.FAMILY, run, "smoke", tmp_path / "b", cpu, progress=False)
    resumed, again = second.model, second.history
    assert again.resumed_from == 4
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_a_non_finite_loss_names_the_step_and_the_term(monkeypatch):
    model = _tiny()
    monkeypatch.setattr(model, "prepare", lambda images: torch.full_like(images, float("nan")))
    step = gan.gan_step(model, gan.build_optimizers(model), torch.device("cpu"))
    batch = (torch.rand(8, 1, 28, 28),)
    with pytest.raises(train.NonFiniteLossError, match=r"step 0: term\(s\) total, d_loss"):
        train.fit(step, lambda: batch, 2, progress=False)


def test_read_factors_recovers_the_factors_of_real_images():
    source = data.load_ground_truth("dsprites-style-tied", "smoke")
    factors = source.sample_factors(50, np.random.default_rng(0))
    images = torch.nn.functional.avg_pool2d(source.images(factors), 2)
    assert np.array_equal(gan.read_factors(source, images), factors)


def test_plugin_mutual_information_of_a_copy_is_its_entropy():
    labels = np.repeat(np.arange(4), 4)
    assert metrics.plugin_mutual_information(labels, labels) == pytest.approx(math.log(4))
    assert metrics.plugin_mutual_information(labels, np.tile(np.arange(4), 4)) == pytest.approx(0)


def test_complex_level_reports_both_levels():
    source = data.load_ground_truth("dsprites-style-tied", "smoke")
    run = GanSettings.for_profile("smoke", code_dim=2, noise_dim=2, steps=3, batch_size=8,
                                    aligned=("posX", "posY"), labelled=16)
    parts = gan.training_parts(run, source, torch.device("cpu"))
    model, history = parts.model, family.fit(parts, run.steps, progress=False)
    assert "supervised_nll" in history.terms
    report = gan.complex_level(model, source, num=200, labelled=100)
    with pytest.raises(ValueError, match="labelled < num"):
        gan.complex_level(model, source, num=200, labelled=200)
    assert report["mi_true"] == pytest.approx(source.mutual_information("posX", "posY"))
    assert report["mi_true"] > 0.5
    assert set(report["readout_r2"]) == set(report["control_r2"]) == {"posX", "posY"}
    assert np.isfinite(report["atomic_tc"]) and report["mi_generated"] >= 0


class _Drawer(torch.nn.Module):
    """A stand-in GAN on the tied grid with two codes and no noise: its generator draws the
    sprite at the positions its codes name (``follows``) or at positions of its own, and its Q
    reads the positions back exactly."""

    def __init__(self, source, follows):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.run = GanSettings(code_dim=2, noise_dim=0)
        self.source, self.follows = source, follows
        self.sizes = torch.tensor([source.factor_sizes[-2], source.factor_sizes[-1]])

    def generate(self, codes, noise=None):
        positions = ((codes + 1) / 2 * (self.sizes - 1)).round().long()
        if not self.follows:
            positions = positions[torch.randperm(len(codes), generator=torch.Generator()
                                                 .manual_seed(1))]
        factors = np.zeros((len(codes), 6), dtype=np.int64)
        factors[:, 4:] = positions.numpy()
        return self.source.images(factors)

    def sample_codes(self, n, device, generator):
        return (torch.empty(n, 0), torch.rand(n, 2, generator=generator) * 2 - 1, None)

    def encode(self, images):
        read = gan.read_factors(self.source, images)[:, 4:]
        return torch.as_tensor(2 * read / (self.sizes.numpy() - 1) - 1, dtype=torch.float32)


@pytest.mark.parametrize("follows", [True, False])
def test_the_complex_level_control_fails_when_the_codes_stop_driving_the_images(follows):
    source = data.load_ground_truth("dsprites-style-tied", "smoke")
    report = gan.complex_level(_Drawer(source, follows), source, num=300, labelled=100)
    # Q reads real images exactly either way: the readout is perfect, the control is not.
    assert min(report["readout_r2"].values()) > 0.99
    if follows:
        assert report["control_r2_min"] > 0.99
    else:
        assert report["control_r2_min"] < 0.1


def test_a_gan_run_on_dependent_factors_reports_its_complex_level(tmp_path):
    _, _, result = gan.run("tcgan", "dsprites-style-tied", profile="smoke", out_dir=tmp_path,
                           progress=False, code_dim=2, noise_dim=2, steps=3, batch_size=8)
    level = result["metrics"]["complex_level"]
    assert level["factors"] == ["posX", "posY"] and np.isfinite(level["control_r2_min"])
    assert level["control_r2_min"] == min(level["control_r2"].values())


def test_cli_trains_a_gan_and_writes_the_full_evaluation(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "tcgan", "--profile", "smoke", "--estimator", "drt", "--out", str(out),
                 "--quiet"]) == 0
    written = json.loads((out / "metrics.json").read_text())
    assert written["settings"]["estimator"] == "drt" and written["profile"] == "smoke"
    assert written["command"].startswith("python -m disentangle train tcgan --profile smoke")
    for key in ("mig", "dci_disentanglement", "sap", "modularity", "explicitness", "jemmig",
                "beta_vae_eval", "factor_vae_eval", "gaussian_total_correlation", "seed"):
        assert key in written["metrics"]
    assert "complex_level" not in written["metrics"]  # its factors are independent
    assert (out / "traversal.png").stat().st_size > 0
    assert (out / train.CHECKPOINT).exists() and (out / "history.json").exists()
