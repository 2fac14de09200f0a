"""The book's one training loop, for every model: seeded batches, a progress bar, a history of every
loss term, checkpoints that resume, evaluation hooks, and a clear error when a loss stops being
finite.

The loop never waits for the device inside a step: the terms are summed on the device and read
once every ``log_every`` steps, and a non-finite loss is caught by flags that also stay on the
device until then. On a GPU the steps run under bf16 autocast with the data already resident there.

A model plugs in through a *step function*: ``step(batch) -> dict of scalar tensors`` that does its
own update(s). :func:`gradient_step` builds the usual one for a single loss; a GAN passes a step
that alternates its players.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import signal
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from disentangle import config, runs

Batch = tuple[torch.Tensor, ...]
StepFn = Callable[[Batch], dict[str, torch.Tensor]]
LossFn = Callable[[nn.Module, Batch], dict[str, torch.Tensor]]
CHECKPOINT = "checkpoint.pt"
#: A run also checkpoints when this many seconds have passed since its last checkpoint, so that a
#: kill costs minutes of a long run, not a quarter of it.
CHECKPOINT_SECONDS = 300.0


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite."""


@dataclass
class History:
    """Every logged value: ``steps[i]`` is the step at which ``terms[name][i]`` (the mean of that
    term over the preceding ``log_every`` steps) was read; ``evaluations`` holds the hook's dicts,
    each with its ``step``; ``resumed_from`` is the step this call of :func:`fit` started at (the
    number of steps it trained is the last step less that)."""

    steps: list[int] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)
    evaluations: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int = 0

    def last(self, name: str) -> float:
        return self.terms[name][-1]

    def series(self) -> dict[str, list[float]]:
        """``{"step": steps, term: values, ...}``, the form the plotting functions take."""
        return {"step": self.steps, **self.terms}

    def as_dict(self) -> dict:
        return {
            "steps": self.steps,
            "terms": self.terms,
            "evaluations": self.evaluations,
            "seconds": self.seconds,
        }


def accelerated(device: torch.device) -> bool:
    """Whether training on ``device`` takes the GPU path (bf16 autocast, compiled networks): on
    CUDA, and in a dry run of the gpu profile (:func:`config.dry_run`) on any device."""
    return device.type == "cuda" or config.dry_run()


def autocast(
    device: torch.device, enabled: bool | None = None
) -> contextlib.AbstractContextManager:
    """bf16 autocast on the GPU path (``enabled=None`` means: where :func:`accelerated`); a no-op
    elsewhere."""
    use = accelerated(device) if enabled is None else enabled
    if not use:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def gradient_step(
    model: nn.Module,
    loss: LossFn,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    amp: bool | None = None,
) -> StepFn:
    """The step for a model with one loss: forward under autocast, backward on ``total``, an
    optimizer step. Returns the detached terms."""

    def step(batch: Batch) -> dict[str, torch.Tensor]:
        model.train()
        with autocast(device, amp):
            terms = loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        return {name: value.detach().float() for name, value in terms.items()}

    return step


def compile_or_fallback(module: nn.Module, example: torch.Tensor) -> nn.Module:
    """``torch.compile(module)`` if a forward and backward pass through it work on ``example``;
    otherwise the module itself, with a warning that says why. Compilation fails on some
    platforms and shapes, and a chapter must never fail because of it. Off CUDA (a dry run) the
    graph is captured by Dynamo and run eagerly (backend ``eager``): it needs no C++ compiler and
    checks that the networks trace, in a fraction of the time AOTAutograd would add."""
    backend = "inductor" if example.device.type == "cuda" else "eager"
    try:
        compiled = torch.compile(module, backend=backend)
        out = compiled(example)
        first = out if isinstance(out, torch.Tensor) else next(iter(out.values()))
        first.float().sum().backward()
        module.zero_grad(set_to_none=True)
        return compiled
    except Exception as err:  # any compiler failure means: run eagerly
        warnings.warn(f"torch.compile failed, training eagerly instead: {err!s:.200}", stacklevel=2)
        module.zero_grad(set_to_none=True)
        return module


def _save(path: Path, payload: dict) -> None:
    partial = path.with_suffix(f".{os.getpid()}.partial")
    torch.save(payload, partial)
    partial.replace(path)


class _DeferredInterrupt:
    """Holds a Ctrl-C (SIGINT) or a SIGTERM (what a scheduler or ``kill`` sends) until the step
    it lands in has finished, so that the checkpoint written on it matches a step boundary
    (weights, optimizer and random generators alike) and a resumed run continues exactly; either
    then ends the run as ``KeyboardInterrupt``. A second signal interrupts at once. Signals can
    only be caught in the main thread; elsewhere an interrupt is taken where it lands."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.pending = False
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:
            self.previous = {s: signal.signal(s, self._hold) for s in self.SIGNALS}

    def _hold(self, signum: int, frame: object) -> None:
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def restore(self) -> None:
        if self.installed:
            # None: a handler set outside Python, which cannot be put back; the default can.
            for number, previous in self.previous.items():
                signal.signal(number, previous or signal.SIG_DFL)
            self.installed = False


def fit(
    step: StepFn,
    next_batch: Callable[[], Batch],
    steps: int,
    *,
    state: Mapping[str, nn.Module | torch.optim.Optimizer] | None = None,
    generators: Mapping[str, torch.Generator] | None = None,
    out_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    log_every: int = 50,
    evaluate: Callable[[int], dict] | None = None,
    evaluate_every: int | None = None,
    progress: bool = True,
    description: str = "training",
) -> History:
    """Run ``step(next_batch())`` for ``steps`` steps and return the :class:`History`.

    ``state`` names the modules and optimizers a checkpoint holds and ``generators`` the random
    generators the batches come from, so that a resumed run continues exactly where it stopped.
    With ``out_dir``, a checkpoint is written there every ``checkpoint_every`` steps, after
    :data:`CHECKPOINT_SECONDS` of training since the last one, at the end, and when the run is
    interrupted (Ctrl-C or SIGTERM, taken at the end of the step); with ``resume`` a run starts
    from the checkpoint it finds there. A NaN or infinite term, or a weight of a module in
    ``state`` that is no longer finite, raises :class:`NonFiniteLossError` naming the step and
    the term or module, before any checkpoint is overwritten.
    """
    if steps < 0 or log_every < 1:
        raise ValueError(f"steps must be >= 0 and log_every >= 1; got {steps} and {log_every}.")
    state, generators = dict(state or {}), dict(generators or {})
    path = Path(out_dir) / CHECKPOINT if out_dir is not None else None
    history, start = History(), 0
    if path is not None and resume and path.exists():
        start, history = _restore(path, state, generators, steps)
    history.resumed_from = start
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)

    names: list[str] | None = None
    sums = bad_step = bad_terms = None
    count = 0
    began = time.perf_counter() - history.seconds

    def check() -> None:
        if bad_step is not None and int(bad_step) >= 0:
            blown = [n for n, b in zip(names, bad_terms.tolist()) if b]
            where = f"; the last good checkpoint is {path}" if path and path.exists() else ""
            raise NonFiniteLossError(
                f"Non-finite loss at step {int(bad_step)}: term(s) {', '.join(blown)} became NaN "
                f"or infinite{where}. Lower the learning rate or beta, or check the data."
            )

    def weights_finite(at: int) -> None:
        for name, obj in state.items():
            if isinstance(obj, nn.Module) and not all(
                    bool(torch.isfinite(p).all()) for p in obj.parameters()):
                where = f"; the last good checkpoint is {path}" if path and path.exists() else ""
                raise NonFiniteLossError(
                    f"The weights of {name} are NaN or infinite after step {at}, though the loss "
                    f"was finite{where}. Lower the learning rate, or check the data.")

    last_saved = time.perf_counter()

    def checkpoint(at: int) -> None:
        nonlocal last_saved
        if path is None:
            return
        check()
        weights_finite(at)
        last_saved = time.perf_counter()
        history.seconds = time.perf_counter() - began
        _save(
            path,
            {
                "step": at,
                "history": history.as_dict(),
                "state": {name: obj.state_dict() for name, obj in state.items()},
                "generators": {name: g.get_state() for name, g in generators.items()},
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
        )

    bar = tqdm(
        range(start, steps),
        initial=start,
        total=steps,
        desc=description,
        disable=not progress,
        mininterval=1.0,
    )
    completed = start
    interrupt = _DeferredInterrupt()
    try:
        for at in bar:
            terms = step(next_batch())
            if names is None:
                names = list(terms)
                device = terms[names[0]].device
                sums = torch.zeros(len(names), device=device)
                bad_step = torch.full((), -1, dtype=torch.long, device=device)
                bad_terms = torch.zeros(len(names), dtype=torch.bool, device=device)
            values = torch.stack([terms[n].float() for n in names])
            finite = torch.isfinite(values)
            first = (bad_step < 0) & ~finite.all()
            bad_step = torch.where(first, torch.full_like(bad_step, at), bad_step)
            bad_terms = torch.where(first, ~finite, bad_terms)
            sums += torch.where(finite, values, torch.zeros_like(values))
            count += 1
            done = completed = at + 1
            if done % log_every == 0 or done == steps:
                check()
                means = (sums / count).tolist()
                history.steps.append(done)
                for name, value in zip(names, means):
                    history.terms.setdefault(name, []).append(value)
                sums.zero_()
                count = 0
                bar.set_postfix({n: f"{v:.3g}" for n, v in zip(names, means) if n == "total"})
            if evaluate is not None and evaluate_every and done % evaluate_every == 0:
                history.evaluations.append({"step": done, **evaluate(done)})
            due = checkpoint_every and done % checkpoint_every == 0
            late = time.perf_counter() - last_saved > CHECKPOINT_SECONDS
            if (due or late) and done < steps:
                checkpoint(done)
            if interrupt.pending:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        checkpoint(completed)
        raise
    finally:
        interrupt.restore()
        bar.close()
    check()
    evaluated_last = history.evaluations and history.evaluations[-1]["step"] == steps
    if evaluate is not None and not evaluated_last:
        history.evaluations.append({"step": steps, **evaluate(steps)})
    if start < steps:  # a finished run that was only loaded keeps its checkpoint as it was
        history.seconds = time.perf_counter() - began
        checkpoint(steps)
    return history


def load_payload(path: str | Path) -> dict:
    """A checkpoint's contents, loaded with ``weights_only=True``: tensors, numbers, strings and
    containers only. A file that is empty, cut short, not a checkpoint, or one holding other
    Python objects (whose unpickling could run code, and which is never attempted) is refused
    with one ``ValueError`` naming the file and the way out."""
    path = Path(path)
    start_over = (f"delete {path} to train this run from the start (its settings are in "
                  "run.json beside it), or train into another folder")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (a write cut short?): {start_over}.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err) or "Unsupported class" in str(err):
            raise ValueError(
                f"{path} holds Python objects other than tensors and plain containers, which "
                "only an unsafe load could read (and which could run code); it was not written "
                f"by this library's training loop: {start_over}.") from None
        raise ValueError(f"{path} is not a checkpoint (damaged, or another kind of file): "
                         f"{start_over}.") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{path} is damaged ({' '.join(str(err).split())[:80]}): "
                         f"{start_over}.") from None
    expected = ("step", "history", "state", "generators", "torch_rng")
    lacking = [key for key in expected if not isinstance(payload, dict) or key not in payload]
    if lacking:
        raise ValueError(f"{path} is not a checkpoint of this library's training loop (it lacks "
                         f"{', '.join(lacking)}): {start_over}.")
    return payload


def slim(source: str | Path, target: str | Path) -> Path:
    """Write the finished run's checkpoint ``source`` to ``target`` without its optimizers'
    state: the weights and history a saved model needs to be loaded, at a third of the size. A
    slim checkpoint marks itself (``"slim": True``) and is never resumed (:func:`fit` refuses)."""
    payload = load_payload(source)
    kept = {name: value for name, value in payload["state"].items()
            if not (isinstance(value, dict) and "param_groups" in value)}
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    torch.save({**payload, "state": kept, "slim": True}, partial)
    os.replace(partial, target)
    return target


def _restore(path: Path, state: dict, generators: dict, steps: int) -> tuple[int, History]:
    payload = load_payload(path)
    missing = set(state) - set(payload["state"])
    if payload.get("slim"):  # a saved model: its optimizers were left out, it trains no further
        if int(payload["step"]) < steps:
            raise ValueError(
                f"{path} is a saved model of {payload['step']} steps without its optimizers' "
                f"state, so it cannot be trained on to {steps}: delete it to train afresh.")
        missing = {n for n in missing if not isinstance(state[n], torch.optim.Optimizer)}
        state = {name: obj for name, obj in state.items() if name in payload["state"]}
    if missing:
        raise ValueError(
            f"{path} holds no state for {sorted(missing)}; it was written by a different run. "
            "Use another output folder, or resume=False to start over."
        )
    for name, obj in state.items():
        obj.load_state_dict(payload["state"][name])
    for name, generator in generators.items():
        if name in payload["generators"]:
            generator.set_state(payload["generators"][name])
    torch.set_rng_state(payload["torch_rng"])
    if payload.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    saved = payload["history"]
    history = History(saved["steps"], saved["terms"], saved["evaluations"], saved["seconds"])
    return int(payload["step"]), history


def load_checkpoint(
    path: str | Path, state: Mapping[str, nn.Module | torch.optim.Optimizer]
) -> History:
    """Load the modules and optimizers of a finished or interrupted run (on the CPU or the GPU
    alike: tensors go where each module already lives) and return its history."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint at {path}; train first, or check the folder.")
    payload = load_payload(path)
    for name, obj in state.items():
        obj.load_state_dict(payload["state"][name])
    saved = payload["history"]
    return History(saved["steps"], saved["terms"], saved["evaluations"], saved["seconds"])


def save_run(out_dir: str | Path, result: dict, history: History) -> Path:
    """Write a finished run's ``history.json`` and then its ``metrics.json`` (``result``) to
    ``out_dir``, next to its checkpoint, each whole or not at all; returns the folder."""
    out = Path(out_dir)
    runs.write_json(out / "history.json", history.as_dict(), indent=None)
    runs.write_json(out / "metrics.json", result)
    return out


def scaled_lr(base_lr: float, batch_size: int, base_batch: int = 64) -> float:
    """Learning rate for ``batch_size`` when ``base_lr`` suits ``base_batch``: the square-root rule
    lr * sqrt(B / B0), which keeps Adam's update noise comparable across batch sizes."""
    return base_lr * math.sqrt(batch_size / base_batch)


class TensorBatches:
    """Random minibatches drawn with replacement from tensors that already live on the device
    (images and labels), with their own generator so that a resumed run draws the same batches."""

    def __init__(self, *tensors: torch.Tensor, batch_size: int, seed: int = 0):
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("TensorBatches needs tensors of one length (one row per example).")
        self.tensors, self.batch_size = tensors, batch_size
        self.generator = torch.Generator(device=tensors[0].device).manual_seed(seed)

    def __call__(self) -> Batch:
        index = torch.randint(
            0,
            len(self.tensors[0]),
            (self.batch_size,),
            device=self.tensors[0].device,
            generator=self.generator,
        )
        return tuple(t[index] for t in self.tensors)
