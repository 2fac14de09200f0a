import pytest
import torch
from torch.distributions import Normal, kl_divergence

from disentangle import losses, supervised
from disentangle.data import load_labelled
from disentangle.nets import LOG_VAR_RANGE, GaussianEncoder
from disentangle.supervised import VIB, DisenIB, DisTIB, SupervisedSettings


@pytest.mark.parametrize("kind", ["mlp", "conv"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 64, 64)])
def test_distib_shapes(kind, shape):
    torch.manual_seed(0)
    model = DisTIB(shape, num_classes=3, dim_a=4, dim_z=5, encoder=kind, decoder=kind, hidden=32,
                   width=8)
    x = torch.rand(6, *shape)
    out = model(x)
    assert out["mean_a"].shape == (6, 4) and out["log_var_z"].shape == (6, 5)
    assert out["logits"].shape == (6, 3) and out["reconstruction"].shape == (6, *shape)
    a, z = model.encode(x)
    assert torch.equal(a, model.encode(x)[0]), "encode returns means: no sampling"
    assert model.classify(x).shape == (6, 3)


def test_swap_decodes_every_pair():
    torch.manual_seed(0)
    model = DisTIB((1, 28, 28), num_classes=10, dim_a=3, dim_z=2, hidden=16)
    x_a, x_z = torch.rand(3, 1, 28, 28), torch.rand(4, 1, 28, 28)
    grid = model.swap(x_a, x_z)
    assert grid.shape == (3, 4, 1, 28, 28)
    a, _ = model.encode(x_a)
    _, z = model.encode(x_z)
    assert torch.allclose(grid[2, 1], model.decode(a[2:3], z[1:2])[0])
    assert grid.min() >= 0 and grid.max() <= 1


@pytest.mark.parametrize("decoder_trains_a", [True, False])
def test_decoder_trains_a_decides_whether_the_reconstruction_reaches_a(decoder_trains_a):
    torch.manual_seed(0)
    model = DisTIB((1, 8, 8), num_classes=3, dim_a=2, dim_z=2, hidden=8,
                   decoder_trains_a=decoder_trains_a)
    x, y = torch.rand(5, 1, 8, 8), torch.randint(0, 3, (5,))

    def gradient(term, encoder):
        model.zero_grad()
        supervised.distib_loss(model(x), x, y, 1e-3, "bernoulli")[term].backward()
        return sum(p.grad.abs().sum() for p in encoder.parameters() if p.grad is not None)

    assert (gradient("reconstruction", model.encoder_a) > 0) == decoder_trains_a
    assert gradient("reconstruction", model.encoder_z) > 0
    assert gradient("cross_entropy", model.encoder_a) > 0


def test_the_two_step_run_is_distib_with_the_reconstruction_stopped_at_a():
    labelled = load_labelled("digits", None, "smoke", 0, torch.device("cpu"))
    for model, trains_a in (("distib", True), ("twostep", False)):
        run = SupervisedSettings.for_profile("smoke", model=model, data="digits")
        built = supervised.build_model(run, labelled)
        assert isinstance(built, DisTIB) and built.decoder_trains_a == trains_a


def test_disenib_sends_each_term_only_where_its_reference_procedure_says():
    torch.manual_seed(0)
    model = DisenIB((1, 8, 8), num_classes=3, dim_a=2, dim_z=2, hidden=8)
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 3, (6,))

    def gradient(term, module, trains="style", loss=supervised.disenib_loss):
        model.zero_grad()
        args = (model, x) if loss is supervised.objectives.disenib_estimator_loss else (
            model, x, y, trains)
        loss(*args)[term].backward()
        return sum(p.grad.abs().sum() for p in module.parameters() if p.grad is not None)

    # The reconstruction is from S and the label, never from T; the label is read from T only.
    assert gradient("reconstruction", model.encoder_a) == 0
    assert gradient("reconstruction", model.encoder_z) > 0
    assert gradient("reconstruction", model.embedding) > 0
    assert gradient("cross_entropy", model.encoder_a) > 0
    assert gradient("cross_entropy", model.encoder_z) == 0
    # The estimator's term reaches the encoder whose turn it is, and only that one.
    assert gradient("estimator", model.encoder_z, "style") > 0
    assert gradient("estimator", model.encoder_a, "style") == 0
    assert gradient("estimator", model.encoder_a, "label") > 0
    assert gradient("estimator", model.encoder_z, "label") == 0
    # During the warm-up it reaches neither, through the total.
    assert gradient("total", model.encoder_a, None) > 0  # the label term
    model.zero_grad()
    supervised.disenib_loss(model, x, y, None)["total"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.estimator.parameters())
    # The estimator's loss trains the estimator and no encoder.
    estimator_loss = supervised.objectives.disenib_estimator_loss
    assert gradient("total", model.estimator, loss=estimator_loss) > 0
    assert gradient("total", model.encoder_a, loss=estimator_loss) == 0
    assert gradient("total", model.encoder_z, loss=estimator_loss) == 0


def test_disenib_clusters_codes_within_the_radius_and_keeps_far_ones():
    codes = torch.tensor([[0.0, 0.0], [0.1, 0.1], [5.0, 5.0]])
    clustered = supervised.objectives.cluster(codes, radius=0.5)
    assert torch.allclose(clustered, torch.tensor([[0.05, 0.05], [0.05, 0.05], [5.0, 5.0]]))


def test_disenib_codes_are_gaussians_of_the_fixed_noise_and_its_swaps_decode_the_read_label():
    torch.manual_seed(0)
    model = DisenIB((1, 8, 8), num_classes=3, dim_a=2, dim_z=2, hidden=8).eval()
    x = torch.rand(4, 1, 8, 8)
    out = model.posteriors(x)
    assert torch.allclose(out["log_var_a"], torch.zeros(4, 2))
    assert torch.allclose(out["log_var_z"].exp(), torch.full((4, 2), 0.01))
    a, z = model.encode(x)
    label = model.classify(x).argmax(1)
    signed = model.decoder(torch.cat([z, model.embedding(label)], 1))
    assert torch.allclose(model.decode(a, z), ((signed + 1) / 2).clamp(0, 1))
    assert model.swap(x, x).shape == (4, 4, 1, 8, 8)
    names = {name.split(".")[0] for name, _ in model.named_parameters()}
    assert "estimator" in names
    main = {id(p) for p in model.main_parameters()}
    assert not main & {id(p) for p in model.estimator.parameters()}


def test_separate_variance_network_and_clamp():
    shared = GaussianEncoder((1, 28, 28), 4, hidden=16)
    separate = GaussianEncoder((1, 28, 28), 4, hidden=16, separate=True)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(separate) > count(shared)
    with torch.no_grad():
        separate.log_var.bias.fill_(100.0)
    _, log_var = separate(torch.rand(2, 1, 28, 28))
    assert log_var.max() <= LOG_VAR_RANGE[1]


def test_vib_outputs():
    model = VIB((1, 8, 8), num_classes=10, dim_z=4, hidden=16)
    out = model(torch.rand(5, 1, 8, 8))
    assert set(out) == {"mean_z", "log_var_z", "logits"} and out["logits"].shape == (5, 10)


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_the_activation_reaches_every_layer(kind):
    # A ReLU left in a convolution can go silent for every image and stop all gradient to its
    # code; a model built with LeakyReLU must have none.
    model = DisTIB((1, 32, 32), 3, encoder=kind, decoder=kind, hidden=16, width=4,
                   activation="leaky_relu")
    kinds = {type(layer) for layer in model.modules()}
    assert torch.nn.LeakyReLU in kinds and torch.nn.ReLU not in kinds


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: DisTIB((1, 28, 28), 3, encoder="resnet"), "use 'mlp' or 'conv'"),
        (lambda: DisTIB((1, 28, 28), 3, decoder="resnet"), "use 'mlp' or 'conv'"),
        (lambda: DisTIB((1, 28, 28), 3, activation="gelu2"), "valid ones are relu"),
        (lambda: DisTIB((1, 28, 28), 3, likelihood="poisson"), "'bernoulli' or 'gaussian'"),
        (lambda: DisTIB((1, 30, 30), 3, encoder="conv"), "28 x 28, 32 x 32 or 64 x 64"),
    ],
)
def test_bad_configuration_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_gaussian_kl_matches_torch():
    torch.manual_seed(0)
    mean, log_var = torch.randn(7, 3), torch.randn(7, 3)
    expected = kl_divergence(Normal(mean, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(losses.gaussian_kl(mean, log_var), expected, atol=1e-6)
    assert losses.gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max() == 0


def test_reconstruction_terms():
    out, target = torch.randn(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    gauss = losses.reconstruction_nll(out, target, "gaussian")
    assert torch.allclose(gauss, 0.5 * ((out - target) ** 2).flatten(1).sum(1))
    bern = losses.reconstruction_nll(out, target, "bernoulli")
    p = torch.sigmoid(out)
    manual = -(target * p.log() + (1 - target) * (1 - p).log()).flatten(1).sum(1)
    assert torch.allclose(bern, manual, atol=1e-5)
    with pytest.raises(ValueError, match="Unknown likelihood"):
        losses.reconstruction_nll(out, target, "laplace")


def test_distib_loss_is_the_sum_of_its_named_terms():
    torch.manual_seed(0)
    model = DisTIB((1, 8, 8), num_classes=4, dim_a=2, dim_z=3, hidden=8)
    x, y = torch.rand(5, 1, 8, 8), torch.randint(0, 4, (5,))
    terms = supervised.distib_loss(model(x), x, y, beta=0.3, likelihood="bernoulli",
                                   reconstruction_weight=0.1)
    assert set(terms) == {"total", "reconstruction", "cross_entropy", "kl_a", "kl_z"}
    kl = terms["kl_a"] + terms["kl_z"]
    expected = 0.1 * terms["reconstruction"] + terms["cross_entropy"] + 0.3 * kl
    assert torch.allclose(terms["total"], expected)
    vib = VIB((1, 8, 8), num_classes=4, dim_z=2, hidden=8)
    v = supervised.vib_loss(vib(x), y, beta=0.5)
    assert torch.allclose(v["total"], v["cross_entropy"] + 0.5 * v["kl_z"])


def _threshold(scale=5.0):
    def classify(x):  # one pixel; class 1 when it is above 0.5
        s = 2 * x.flatten(1) - 1
        return torch.cat([-scale * s, scale * s], dim=1)

    return classify


@pytest.mark.parametrize("loss", ["cross_entropy", "logit"])
def test_fgsm_on_a_threshold_classifier(loss):
    # In the [-1, 1] range a point at s flips exactly when eps > |s|, so with s spread evenly
    # (every point classified correctly) both rates are known; either loss points the same way.
    signed = torch.linspace(-0.95, 0.95, 20)
    images = ((signed + 1) / 2).reshape(-1, 1, 1, 1)
    labels = (signed > 0).long()
    result = supervised.fgsm_rates(_threshold(), images, labels, epsilons=(0.0, 0.31, 2.0),
                                   loss=loss)
    expected = float((signed.abs() > 0.31).float().mean())
    for rate in ("accuracy", "survival"):
        assert result[rate][0.0] == 1.0 and result[rate][2.0] == 0.0
        assert result[rate][0.31] == pytest.approx(expected)


def test_fgsm_survival_counts_correct_points_and_accuracy_counts_all():
    images = torch.tensor([0.1, 0.9, 0.9, 0.9]).reshape(-1, 1, 1, 1)
    labels = torch.tensor([0, 1, 0, 0])  # the last two are misclassified
    result = supervised.fgsm_rates(_threshold(1.0), images, labels, epsilons=(0.1,))
    assert result == {"accuracy": {0.1: 0.5}, "survival": {0.1: 1.0}}
    # A model that gets (almost) nothing right wins survival, never accuracy: the negative
    # control that the survival rate alone failed.
    wrong = supervised.fgsm_rates(_threshold(1.0), images[2:], labels[2:], epsilons=(0.1,))
    assert wrong == {"accuracy": {0.1: 0.0}, "survival": {0.1: None}}
    with pytest.raises(ValueError, match="Unknown FGSM loss 'hinge'"):
        supervised.fgsm_rates(_threshold(), images, labels, loss="hinge")


def test_the_reference_protocol_reads_vib_from_samples_and_two_codes_from_means():
    from disentangle.supervised.evaluation import reference_classifier

    x = torch.rand(16, 1, 8, 8)
    vib = VIB((1, 8, 8), num_classes=4, dim_z=2, hidden=8).eval()
    sampled = reference_classifier(vib)
    assert not torch.equal(sampled(x), sampled(x))  # a fresh sample every call
    model = DisTIB((1, 8, 8), num_classes=4, dim_a=2, dim_z=2, hidden=8).eval()
    assert reference_classifier(model) == model.classify
    assert torch.equal(reference_classifier(model)(x), reference_classifier(model)(x))
