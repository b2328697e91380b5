"""One batched run: a sweep's jobs that differ only in what `linreg.batched.StackedLinear` holds per member,
trained as one Lightning run, after which every job's folder holds what its own run would have written.

Each job keeps its own model (the class its config names, seeded with its seed, so its initial weights are its
own run's), loggers, loss curve, validation curve, fit pictures, checkpoint and record; `BatchedRun.finish`
completes one job's record through the same code as a basic run (`linreg.train.finish`). The member's steps
follow its own run's schedule: the loss logged every `log_every_n_steps`, validated at step 0, every
`val_check_interval` and where it stops, pictures at 0, 100, 1000, ... and the end.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from linreg import measurements, record
from linreg.batched import StackedLinear, member_scores
from linreg.build import quiet_lightning
from linreg.data import RegressionDataModule
from linreg.errors import InvalidInput
from linreg.fit_pictures import FILE as PICTURE_FILE
from linreg.fit_pictures import FitPicture, FitPictures, encode_png, log_png
from linreg.hparams import log_hparams
from linreg.interrupt import GracefulInterrupt
from linreg.least_squares import Optimum
from linreg.loss_monitor import LossCurve
from linreg.models import LOGGED_AS, LinearRegression
from linreg.outcome import ended, failures_recorded, stopped_by
from linreg.progress import StepProgressBar
from linreg.record import CHECKPOINT, Record
from linreg.targets import build
from linreg.train import finish, warn_above_stability_limit


@dataclass
class Job:
    """A sweep job the batched launcher took: its checked config, folder and command-line overrides."""

    index: int  # its place in the launcher's list of jobs
    config: DictConfig  # the whole config as Hydra composed it for the job, `hydra` included
    cfg: DictConfig  # its run config, resolved and checked (`linreg.resume.run_config`)
    run_dir: Path
    overrides: list[str]
    task_config: DictConfig  # `config` without `hydra`: what Hydra writes as .hydra/config.yaml
    hydra_config: DictConfig  # what `HydraConfig` holds while the job runs (`HydraConfig.set_config(config)`)
    config_yaml: str | None = None  # `task_config` as YAML, once written beside the checkpoint


@dataclass
class Member:
    """One job inside the batched run: its own model (holding its weights once trained), loggers and record."""

    job: Job
    model: LinearRegression
    loggers: list[Logger]
    held: HeldScalars  # its curves' points, written to `loggers` member by member (`HeldScalars` says why)
    curve: LossCurve
    record: Record
    best: Optimum  # its data's optimum, in the units trained
    iters: int  # its own (a plain int: read at every step, where a config's attribute costs microseconds)
    steps: int = 0
    stopped: bool = False  # at its iters, at a divergence, or when the batched run ended
    png: bytes | None = field(default=None, repr=False)  # its last fit picture, for fit.png


HELD_FOR_S = 2.0  # how long the members' scalars are held before they are written (`HeldScalars`)


class BatchedRun:
    """The jobs of one group, built, trained together and recorded one by one.

    Building refuses a job with `InvalidInput` where its own run would (its optimizer refusing a value): such
    jobs are listed in `refused` and left to the basic launcher, which reports them as a basic sweep does.
    """

    def __init__(self, jobs: Sequence[Job]) -> None:
        cfg = jobs[0].cfg  # what the group shares: data, model class, trainer, callbacks, loggers
        quiet_lightning()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.cfg = cfg
        self.datamodule: RegressionDataModule = build("data", cfg.data)
        shape = {"in_features": self.datamodule.n_features, "out_features": self.datamodule.n_targets}
        self.members: list[Member] = []
        self.refused: list[Job] = []
        options = []
        for job in jobs:
            L.seed_everything(job.cfg.seed, verbose=False)  # as build_run seeds each run's initial weights
            try:
                optimizer = build("optimizer", job.cfg.optimizer)  # a partial: the class and this job's settings
                model = build("model", job.cfg.model, **shape, optimizer=optimizer)
                model.configure_optimizers()  # a value the optimizer refuses: refused as its own run would be
            except (InvalidInput, ValueError, TypeError):
                self.refused.append(job)
                continue
            model.standardization = self.datamodule.standardization
            self.members.append(self._member(job, model))
            options.append(dict(optimizer.keywords))
        self.optimizer_class = optimizer.func if self.members else None
        self.callbacks = [build(f"callbacks.{name}", node) for name, node in cfg.callbacks.items()]
        self.interrupt = next(c for c in self.callbacks if isinstance(c, GracefulInterrupt))
        self.pictures = any(isinstance(c, FitPictures) for c in self.callbacks)
        if self.members:
            self.model = StackedLinear([m.model.network for m in self.members], self.optimizer_class, options)
        self.stages = tuple(stage for stage in ("val", "test") if self.datamodule.has_rows(stage))
        self.fit_s = self.wall_s = 0.0

    def _member(self, job: Job, model: LinearRegression) -> Member:
        loggers = [build(f"logger.{name}", node, save_dir=str(job.run_dir)) for name, node in job.cfg.logger.items()]
        log_every = self.cfg.trainer.get("log_every_n_steps") or 50  # Lightning's default
        result, best = measurements.started(job.cfg, self.datamodule, model, job.overrides, 1)
        held = HeldScalars(loggers)
        curve = LossCurve([held], job.cfg.iters, log_every)
        return Member(job, model, loggers, held, curve, result, best, int(job.cfg.iters))

    def train(self) -> None:
        """Fit every member in one Lightning run; their records say running meanwhile (what a kill leaves)."""
        steps = [member.iters for member in self.members]
        schedule = MemberSchedule(self)
        kept = [c for c in self.callbacks if isinstance(c, GracefulInterrupt | StepProgressBar)]
        no_validation = {"limit_val_batches": 0}  # each member is validated on its own schedule (MemberSchedule)
        self.trainer: L.Trainer = build(
            "trainer", self.cfg.trainer, max_steps=max(steps), max_epochs=-1, logger=False,
            default_root_dir=str(self.members[0].job.run_dir), callbacks=[schedule, *kept], **no_validation,
        )  # fmt: skip
        with self.interrupt, contextlib.ExitStack() as stack:
            for member in self.members:
                stack.enter_context(failures_recorded(member.job.run_dir, member.record))
                warn_above_stability_limit(member.record, member.model)
                record.write(member.job.run_dir, member.record)  # running: what a killed run leaves behind
            clock = time.perf_counter()
            try:
                with self.interrupt.lightnings_sigterm_noted():
                    self.trainer.fit(self.model, datamodule=self.datamodule)
                self.fit_s = time.perf_counter() - clock
                schedule.stop_all(self.trainer, self.model)
                self._test()
            finally:  # a run that fails keeps the curve it logged, as a basic run's loggers do
                schedule.write_held()
            self._save_checkpoints()
            self.wall_s = time.perf_counter() - clock

    def _test(self) -> None:
        """The test split, scored once at the end with each member's final weights, logged at its last step."""
        if "test" not in self.stages:
            return
        served = self.datamodule.served.test
        for member, scores in zip(self.members, self._scores(served, "test"), strict=True):
            member.model.scores["test"] = scores
            _log(member, scores, member.steps)

    def _scores(self, split: Any, stage: str) -> list[dict[str, float]]:
        x, y = split.x.to(self.model.device), split.y.to(self.model.device)
        return member_scores(self.model, x, y, self.datamodule.standardization, stage)

    def _save_checkpoints(self) -> None:
        """Each member's checkpoints/last.ckpt, as its own run would save it: its weights, its part of the
        optimizer state and the loop counters at its own step, so that `resume=<job folder>` continues it."""
        shared = self.trainer._checkpoint_connector.dump_checkpoint(weights_only=False)  # Lightning's own layout
        total = self.trainer.global_step
        for k, member in enumerate(self.members):
            model = member.model.to(self.model.dtype)
            self.model.copy_member_into(k, model.network)
            checkpoint = {
                **shared,
                "global_step": member.steps,
                "state_dict": model.state_dict(),
                "optimizer_states": [self.model.member_optimizer_state(k)],
                "loops": _loops_at(shared["loops"], member.steps, total),
                "hparams_name": "kwargs",
                "hyper_parameters": dict(model.hparams),
            }
            model.on_save_checkpoint(checkpoint)
            path = member.job.run_dir / CHECKPOINT
            path.parent.mkdir(parents=True, exist_ok=True)
            self.trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, path)
            _save_run_config(member.job)

    def finish(self, member: Member) -> Record:
        """Complete and write one member's record (and its hyperparameters, fit.png), as its own run would."""
        result, job = member.record, member.job
        with failures_recorded(job.run_dir, result):
            finish(
                result, member.model, self.datamodule, member.best, self.stages,
                **ended(member.steps, job.cfg.iters, member.curve.last_loss, member.curve.diverged_at_step,
                        self.interrupt.received, lambda: stopped_by(self.trainer)),
                steps=member.steps,
                train_loss=member.curve.last_loss,
                fit_s=round(self.fit_s, 4),  # the batched run's: the members trained together
                wall_s=round(self.wall_s, 4),
            )  # fmt: skip
            log_hparams(member.loggers, result, job.cfg)
            if member.png is not None:
                record.write_atomically(job.run_dir / PICTURE_FILE, member.png)
            record.write(job.run_dir, result)
        return result


def _save_run_config(job: Job) -> None:
    """The job's .hydra/config.yaml beside its checkpoint, as Hydra's run_job writes it before a basic job
    trains: a batched job's run_job comes after training, and a sweep killed in between is continued from
    these two files (`python scripts/train.py -m resume=<sweep folder>`)."""
    subdir = job.config.hydra.output_subdir
    if subdir is not None:
        job.config_yaml = OmegaConf.to_yaml(job.task_config)  # its run_job writes the same text again
        (job.run_dir / subdir).mkdir(parents=True, exist_ok=True)
        (job.run_dir / subdir / "config.yaml").write_text(job.config_yaml, encoding="utf-8")


def _loops_at(loops: dict[str, Any], steps: int, total: int) -> dict[str, Any]:
    """The training loop's counters as a run that stopped at `steps` would have them (the batched run's went
    on to `total`): the batches and optimizer steps counted `total - steps` fewer."""
    loops = copy.deepcopy(loops)
    fit = loops["fit_loop"]
    for key in (
        "epoch_loop.batch_progress",
        "epoch_loop.automatic_optimization.optim_progress",
        "epoch_loop.state_dict",
    ):
        fit[key] = _minus(fit[key], total - steps)
    return loops


def _minus(tree: Any, fewer: int) -> Any:
    if isinstance(tree, dict):
        return {key: _minus(value, fewer) for key, value in tree.items()}
    if isinstance(tree, int) and not isinstance(tree, bool):
        return max(tree - fewer, 0)
    return tree


def _log(member: Member, scores: dict[str, float], step: int) -> None:
    member.held.log_metrics({LOGGED_AS.get(name, name): value for name, value in scores.items()}, step)


class HeldScalars:
    """A member's scalars (its loss and validation curves), held and written to its loggers when `write` is called.

    Each TensorBoard logger has a writer thread that wakes for every event it is given: written as they come,
    step by step across 128 members, every event passes the GIL between the training and a writer thread, which
    doubles the cost of the events (about 1.2 s of a 128-job sweep). Written member by member every
    `HELD_FOR_S` seconds and at the end, each writer takes its events in one go. TensorBoard shows the curves
    as often.
    """

    def __init__(self, loggers: Sequence[Logger]) -> None:
        self.loggers = loggers
        self.points: list[tuple[dict[str, float], int]] = []

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.points.append((metrics, step))

    def write(self) -> None:
        for metrics, step in self.points:
            for logger in self.loggers:
                logger.log_metrics(metrics, step=step)
        self.points.clear()


class MemberSchedule(L.Callback):
    """After each optimizer step of the batched run: every member still training takes its step's loss
    (`LossCurve`: logged, divergence noted), stops at its own iters or divergence, and is validated and
    pictured where its own run would be."""

    def __init__(self, run: BatchedRun) -> None:
        self.run = run
        self.val_every = run.cfg.trainer.get("val_check_interval")
        self.log_every = run.members[0].curve.log_every if run.members else 1  # the trainer's: one for all
        self.last_steps = {member.iters for member in run.members}
        self.picture: FitPicture | None = None
        # A step where no member logs, validates, draws, stops or diverges only keeps its losses here: the curves
        # take them when the next step does something (the last finite loss before a divergence is drawn).
        self.pending: tuple[int, Tensor] | None = None
        self.written_at = time.monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: StackedLinear) -> None:
        self._validate(pl_module, range(len(self.run.members)), 0)  # step 0, as a run's validation before fit
        self._draw(pl_module, range(len(self.run.members)), 0)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: StackedLinear, outputs, batch, batch_idx) -> None:
        step, members = trainer.global_step, self.run.members
        losses = pl_module.losses.detach()
        validating = bool(self.val_every) and step % self.val_every == 0
        drawing = step >= 100 and _power_of_ten(step)
        quiet = not (validating or drawing or step % self.log_every == 0 or step == 1 or step in self.last_steps)
        if quiet and bool(torch.isfinite(losses).logical_or(~pl_module.active).all()):
            self.pending = step, losses
            return
        self._take_pending()
        stepped = [k for k, member in enumerate(members) if not member.stopped]
        values = losses.tolist()
        ending = [k for k in stepped if self._take(k, step, values[k]) or step >= members[k].iters]
        due = [k for k in stepped if validating or k in ending]
        self._validate(pl_module, due, step)
        self._draw(pl_module, [k for k in stepped if drawing and step < members[k].iters], step)
        self._stop(pl_module, ending, step)
        if all(member.stopped for member in members):
            trainer.should_stop = True
        if time.monotonic() - self.written_at >= HELD_FOR_S:
            self.write_held()

    def write_held(self) -> None:
        """Every member's held scalars into its loggers, member by member (`HeldScalars`)."""
        for member in self.run.members:
            member.held.write()
        self.written_at = time.monotonic()

    def stop_all(self, trainer: L.Trainer, pl_module: StackedLinear) -> None:
        """When the batched run ends (interrupted, or every member done): those still training stop here."""
        self._take_pending()
        going = [k for k, member in enumerate(self.run.members) if not member.stopped]
        self._validate(pl_module, going, trainer.global_step)
        self._stop(pl_module, going, trainer.global_step)

    def _take(self, k: int, step: int, loss: float) -> bool:
        """Member k's loss at `step` onto its curve; True where it is not finite."""
        member = self.run.members[k]
        member.steps = step
        return member.curve.add(step, loss)

    def _take_pending(self) -> None:
        if self.pending is not None:
            step, losses = self.pending
            values = losses.tolist()
            for k, member in enumerate(self.run.members):
                if not member.stopped:
                    self._take(k, step, values[k])
            self.pending = None

    def _stop(self, pl_module: StackedLinear, ending: Sequence[int], step: int) -> None:
        for k in ending:
            self.run.members[k].stopped = True
            pl_module.active[k] = False
        self._draw(pl_module, ending, step, last=True)

    def _validate(self, pl_module: StackedLinear, members: Sequence[int], step: int) -> None:
        """The validation split's scores of `members` at `step`: on their curve once per step, as a run's."""
        if not members or "val" not in self.run.stages:
            return
        all_scores = self.run._scores(self.run.datamodule.served.val, "val")
        for k in members:
            member, scores = self.run.members[k], all_scores[k]
            member.model.scores["val"] = scores
            if member.model.val_curve and member.model.val_curve[-1][0] == step:
                continue  # validated at this step already
            member.model.val_curve.append((step, scores["val/mse"]))
            _log(member, scores, step)

    def _draw(self, pl_module: StackedLinear, members: Sequence[int], step: int, last: bool = False) -> None:
        """Fit pictures of `members` at `step` into their TensorBoard logs; the last one is kept for fit.png.
        One picture serves them all: the data, axes and legend are drawn once, each member's line over them;
        members whose weights are equal (step 0 of an lr sweep) share one rendering and one PNG."""
        if not self.run.pictures or not members:
            return
        if self.picture is None:
            self.picture = FitPicture(self.run.datamodule.splits, self.run.datamodule.optimum)
        drawn: dict[tuple[Any, ...], tuple[bytes, tuple[int, ...]]] = {}
        for k in members:
            member = self.run.members[k]
            diverged_at = member.curve.diverged_at_step
            state = (diverged_at, *(p.detach().cpu().numpy().tobytes() for p in pl_module.member_parameters(k)))
            if state not in drawn:
                model = member.model.to(pl_module.dtype)
                pl_module.copy_member_into(k, model.network)
                pixels = self.picture.render(model, step, diverged_at)
                drawn[state] = encode_png(pixels), pixels.shape
            png, shape = drawn[state]
            log_png(member.loggers, png, shape, step)
            if last:
                member.png = png


def _power_of_ten(step: int) -> bool:
    return 10 ** round(math.log10(step)) == step
