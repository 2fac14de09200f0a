import os
import signal

import pytest
import torch

from disentangle import train


def _problem(seed=0):
    torch.manual_seed(seed)
    x = torch.randn(256, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    batches = train.TensorBatches(x, y, batch_size=32, seed=seed)

    def loss(m, batch):
        err = m(batch[0]).squeeze(1) - batch[1]
        return {"total": (err**2).mean(), "mean_error": err.mean()}

    step = train.gradient_step(model, loss, optimizer, torch.device("cpu"))
    return model, optimizer, batches, step


def _fit(model, optimizer, batches, step, steps, **kwargs):
    return train.fit(
        step, batches, steps, state={"model": model, "optimizer": optimizer},
        generators={"batches": batches.generator}, progress=False, **kwargs,
    )


def test_fit_learns_and_logs_every_term():
    history = _fit(*_problem(), steps=200, log_every=20)
    assert history.steps == list(range(20, 201, 20))
    assert set(history.terms) == {"total", "mean_error"}
    assert history.terms["total"][-1] < 0.01 * history.terms["total"][0]


def test_resume_continues_exactly(tmp_path):
    straight = _problem()
    _fit(*straight, steps=40, log_every=10)
    first = _problem()
    _fit(*first, steps=20, log_every=10, out_dir=tmp_path)
    resumed = _problem()  # fresh objects, as after a restart
    history = _fit(*resumed, steps=40, log_every=10, out_dir=tmp_path)
    assert torch.equal(resumed[0].weight, straight[0].weight)
    assert history.steps == [10, 20, 30, 40]


def test_non_finite_loss_names_step_and_term_and_keeps_the_checkpoint(tmp_path):
    model, optimizer, batches, step = _problem()
    calls = {"n": 0}

    def exploding(batch):
        terms = step(batch)
        calls["n"] += 1
        if calls["n"] > 7:
            terms["kl"] = torch.tensor(float("nan"))
        else:
            terms["kl"] = torch.tensor(0.0)
        return terms

    with pytest.raises(train.NonFiniteLossError, match=r"step 7: term\(s\) kl became NaN"):
        train.fit(exploding, batches, 30, state={"model": model}, out_dir=tmp_path,
                  checkpoint_every=5, log_every=10, progress=False)
    saved = torch.load(tmp_path / train.CHECKPOINT, weights_only=False)
    assert saved["step"] == 5, "the last good checkpoint must survive"


def test_interrupt_saves_and_resumes(tmp_path):
    model, optimizer, batches, step = _problem()
    calls = {"n": 0}

    def interrupted(batch):
        calls["n"] += 1
        if calls["n"] == 13:
            raise KeyboardInterrupt
        return step(batch)

    with pytest.raises(KeyboardInterrupt):
        train.fit(interrupted, batches, 30, state={"model": model, "optimizer": optimizer},
                  out_dir=tmp_path, log_every=5, progress=False)
    assert torch.load(tmp_path / train.CHECKPOINT, weights_only=False)["step"] == 12
    history = _fit(model, optimizer, batches, step, steps=30, log_every=5, out_dir=tmp_path)
    assert history.steps[-1] == 30


def test_weights_that_overflow_after_a_finite_loss_are_never_checkpointed(tmp_path):
    model, optimizer, batches, step = _problem()
    calls = {"n": 0}

    def overflowing(batch):  # step 10's update blows a weight up, after its finite loss
        terms = step(batch)
        calls["n"] += 1
        if calls["n"] == calls.get("at", 10):
            with torch.no_grad():
                model.weight[0, 0] = float("inf")
        return terms

    with pytest.raises(train.NonFiniteLossError, match="weights of model are NaN or infinite "
                                                       "after step 10, though the loss was finite"):
        train.fit(overflowing, batches, 30, state={"model": model}, out_dir=tmp_path,
                  checkpoint_every=5, log_every=100, progress=False)
    saved = train.load_payload(tmp_path / train.CHECKPOINT)
    assert saved["step"] == 5 and torch.isfinite(saved["state"]["model"]["weight"]).all()
    # On the last step too, where the run would otherwise end normally.
    model, optimizer, batches, step = _problem()
    calls.update(n=0, at=8)
    with pytest.raises(train.NonFiniteLossError, match="after step 8"):
        train.fit(overflowing, batches, 8, state={"model": model}, out_dir=tmp_path / "last",
                  log_every=100, progress=False)
    assert not (tmp_path / "last" / train.CHECKPOINT).exists()


def test_sigterm_checkpoints_at_the_end_of_its_step_and_the_run_resumes_exactly(tmp_path):
    straight = _problem()
    _fit(*straight, steps=30, log_every=5)
    model, optimizer, batches, step = _problem()
    calls = {"n": 0}
    before = signal.getsignal(signal.SIGTERM)

    def terminated(batch):
        calls["n"] += 1
        if calls["n"] == 13:  # as a scheduler's kill lands, in the middle of step 13
            os.kill(os.getpid(), signal.SIGTERM)
        return step(batch)

    with pytest.raises(KeyboardInterrupt):
        train.fit(terminated, batches, 30, state={"model": model, "optimizer": optimizer},
                  generators={"batches": batches.generator}, out_dir=tmp_path, log_every=5,
                  progress=False)
    assert train.load_payload(tmp_path / train.CHECKPOINT)["step"] == 13
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is put back
    resumed = _problem()
    _fit(*resumed, steps=30, log_every=5, out_dir=tmp_path)
    assert torch.equal(resumed[0].weight, straight[0].weight)


def test_a_long_run_checkpoints_by_wall_time_too(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "CHECKPOINT_SECONDS", 0.0)  # every step is "a while"
    model, optimizer, batches, step = _problem()
    calls = {"n": 0}

    def killed(batch):  # an error the loop does not checkpoint on, as a kill would not
        calls["n"] += 1
        if calls["n"] == 9:
            raise RuntimeError("killed")
        return step(batch)

    with pytest.raises(RuntimeError, match="killed"):
        train.fit(killed, batches, 100, state={"model": model}, out_dir=tmp_path,
                  checkpoint_every=50, log_every=100, progress=False)
    assert train.load_payload(tmp_path / train.CHECKPOINT)["step"] == 8


@pytest.mark.parametrize("damage, message", [
    (lambda path: path.write_bytes(b""), "is empty"),
    (lambda path: path.write_bytes(path.read_bytes()[:200]), "is damaged"),
    (lambda path: path.write_bytes(bytes(range(256)) * 8), "is not a checkpoint"),
    (lambda path: torch.save({"step": 3}, path), "lacks history, state, generators"),
    (lambda path: torch.save([1, 2], path), "lacks step"),
])
def test_a_damaged_checkpoint_is_refused_in_one_line_naming_it_and_the_way_out(
        tmp_path, damage, message):
    model, optimizer, batches, step = _problem()
    _fit(model, optimizer, batches, step, steps=5, out_dir=tmp_path)
    path = tmp_path / train.CHECKPOINT
    damage(path)
    with pytest.raises(ValueError, match=message) as refused:
        _fit(model, optimizer, batches, step, steps=10, out_dir=tmp_path)
    text = str(refused.value)
    assert str(path) in text and "train this run from the start" in text
    assert "\n" not in text and "could run code" not in text


def test_checkpoint_from_another_run_is_refused(tmp_path):
    model, optimizer, batches, step = _problem()
    _fit(model, optimizer, batches, step, steps=5, out_dir=tmp_path)
    with pytest.raises(ValueError, match="holds no state for \\['critic'\\]"):
        train.fit(step, batches, 10, state={"critic": torch.nn.Linear(1, 1)}, out_dir=tmp_path,
                  progress=False)
    with pytest.raises(FileNotFoundError, match="train first"):
        train.load_checkpoint(tmp_path / "nowhere", {"model": model})
    fresh = torch.nn.Linear(3, 1)
    train.load_checkpoint(tmp_path, {"model": fresh})
    assert torch.equal(fresh.weight, model.weight)


def test_evaluation_hook_runs_at_its_interval_and_at_the_end():
    args = _problem()
    history = _fit(*args, steps=25, log_every=5, evaluate=lambda s: {"score": s * 2},
                   evaluate_every=10)
    assert history.evaluations == [
        {"step": 10, "score": 20}, {"step": 20, "score": 40}, {"step": 25, "score": 50},
    ]


def test_batches_and_learning_rate_rule():
    x = torch.arange(100.0)
    first = train.TensorBatches(x, batch_size=8, seed=3)
    second = train.TensorBatches(x, batch_size=8, seed=3)
    assert torch.equal(first()[0], second()[0])
    assert train.scaled_lr(1e-3, 256, 64) == pytest.approx(2e-3)
    with pytest.raises(ValueError, match="one length"):
        train.TensorBatches(x, torch.arange(5.0), batch_size=2)


def test_compile_falls_back_cleanly(monkeypatch):
    def broken(module):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    module = torch.nn.Linear(2, 1)
    with pytest.warns(UserWarning, match="training eagerly"):
        assert train.compile_or_fallback(module, torch.randn(4, 2)) is module
