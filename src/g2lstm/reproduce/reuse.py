"""Reuse finished training runs instead of training again (``g2lstm reproduce --reuse DIR``).

Before a ``<part>-train-<cell>-s<k>`` step runs, the run folders under the ``--reuse`` folders
(:func:`~g2lstm.reproduce.reuse_scan.scan_runs`: found by their saved resolved config, not by
name) of the same task, cell and seed are compared with the config the step would train:

- every resolved config field must be equal, except :data:`IGNORED` (fields that cannot
  change the trained weights nor any number the later steps read from the run);
- the data must be equivalent: for a language model the same text (sha256 of
  ``train/valid/test.txt``; a dataset name such as ``ptb`` stands for its checksummed
  files), for translation a prepared folder with the same settings and output hashes
  (``prepare.json``), wherever it lies;
- the run must be finished (:mod:`~g2lstm.reproduce.reuse_scan`).

A matching run satisfies the step: :func:`~g2lstm.reproduce.reuse_link.adopt` links every
entry of the run folder into the step's folder (so the evaluation and analysis steps, which
read the checkpoints from there, work unchanged; nothing is written into the reused run) and
returns the trainer's result for the step's ``DONE.json``, which also records ``reused_from``
and the ``config_hash``. A candidate that differs is reported in one line naming the
differing fields, and the step trains as usual. Links left by an earlier reuse are removed
(:func:`~g2lstm.reproduce.reuse_link.release`) before a step trains, so a trainer never
writes through them.

With ``wait`` (``--reuse-wait``), a candidate with the same config that a live process trains
right now (a benchmark script running beside the reproduction) is waited for instead of
trained a second time: the step polls until that process ends
(:func:`~g2lstm.reproduce.reuse_scan.wait_while_training`) and decides again, adopting the
run if it finished (and training as usual if it did not).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from g2lstm.config_checks import flatten
from g2lstm.datasets import resolve_dataset
from g2lstm.errors import G2LSTMError
from g2lstm.reproduce.context import RunContext
from g2lstm.reproduce.digest import short_hash
from g2lstm.reproduce.plan import WAIT, Step, read_marker
from g2lstm.reproduce.probe_file import kept_preview
from g2lstm.reproduce.reuse_link import POINTER, adopt, own_files, release
from g2lstm.reproduce.reuse_scan import (
    RunFolder,
    file_sha256,
    lm_fingerprint,
    prepared_fingerprint,
    prepared_inputs,
    resolve_near,
    scan_runs,
    wait_while_training,
)
from g2lstm.reproduce.steps_lm import lm_train_config
from g2lstm.reproduce.steps_mt import SPLIT_PREFIXES, mt_train_config

__all__ = [
    "IGNORED",
    "POINTER",
    "Decision",
    "ReuseFinder",
    "adopt",
    "release",
    "wait_while_training",
]

#: The config a training step of each part of the study trains (``step.part`` -> builder).
TRAIN_CONFIGS = {"lm": lm_train_config, "mt": mt_train_config}
#: Fields a step leaves at 0 to take them from the data (compared by content instead).
FROM_DATA: dict[str, set[str]] = {"lm": {"model.vocab_size"}, "mt": set()}

#: Resolved-config fields that may differ between a reused run and the step, per task: only
#: fields that cannot change the trained weights, nor the numbers later steps read from the
#: run (test perplexity, BLEU under the run's decoding settings, the best checkpoint). Data
#: fields are not ignored but compared by content (module docstring). Everything else, e.g.
#: ``train.eval_batch_size`` (validation drives ASGD and the best checkpoint),
#: ``train.test_batch_size`` (the test perplexity the report shows), ``train.eval_every``
#: (which checkpoint is best), ``decode.*`` (the BLEU of the evaluation step) or
#: ``train.max_steps``, must be equal.
IGNORED: dict[str, dict[str, str]] = {
    "lm": {
        "train.threads": "CPU threads: speed only",
        "train.progress": "progress bars",
        "train.log_interval": "how often the training loss is logged",
        "train.tensorboard": "an extra log writer",
        "train.keep_last": "how many old checkpoints are kept (the best one always is)",
        "train.checkpoint_every": "extra mid-epoch saves (resuming is exact)",
        "preset": "the name the config started from (every value it set is compared)",
        "data": "compared by content",
        "data_dir": "compared by content",
    },
    "mt": {
        "train.threads": "CPU threads: speed only",
        "train.log_every": "how often the training loss is logged",
        "train.keep_last": "how many old checkpoints are kept (the best one always is)",
        "train.valid_bleu": "decodes the validation set after training; no later step uses it",
        "train.data": "compared by the prepared folder's settings and output hashes",
    },
}


@dataclass(frozen=True)
class Decision:
    """What to do with one training step.

    Attributes:
        step_id: the step.
        run: the finished run that satisfies it (None: train as usual).
        config_hash: hash of the compared config and data fingerprint.
        message: one line on a candidate that was not reused, or that is waited for (None if
            there was none).
        pending: set when part of the data is compared only after the data step ran (dry
            run before ``mt-data``).
        waiting_on: a run with the same config that a live process trains now (only with
            ``wait``): the step waits for it, then decides again.
    """

    step_id: str
    run: RunFolder | None = None
    config_hash: str = ""
    message: str | None = None
    pending: str | None = None
    waiting_on: RunFolder | None = None

    @property
    def path(self) -> Path | None:
        return None if self.run is None else self.run.path

    def label(self) -> str:
        """Status shown by ``--dry-run`` (``reuse <path>``, ``wait <path>``)."""
        if self.waiting_on is not None:
            return f"{WAIT} {self.waiting_on.path} (being trained now)"
        return f"reuse {self.path}" + (f" ({self.pending})" if self.pending else "")


@dataclass
class _Data:
    fingerprint: Any = None  # what equivalent data must match (None: unknown)
    inputs: dict[str, str] = field(default_factory=dict)  # MT before preparation
    bpe_merges: int | None = None
    pending: str | None = None
    error: str | None = None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class ReuseFinder:
    """Decides, for each training step, whether a finished run under ``dirs`` satisfies it.

    Args:
        dirs: the ``--reuse`` folders (scanned again at each decision, so runs that finish
            while a long reproduction is running are found).
        ctx: the reproduction's context (scale, output and data folders).
        wait: wait for a run with the step's config that a live process trains now, instead
            of training the step (module docstring).
    """

    def __init__(self, dirs: Sequence[str | Path], ctx: RunContext, *, wait: bool = False) -> None:
        self.dirs = tuple(Path(d) for d in dirs)
        self.ctx = ctx
        self.wait = wait
        for d in self.dirs:
            if not d.is_dir():
                raise G2LSTMError(f"--reuse {d}: not a folder; pass a folder holding run folders")

    # ------------------------------------------------------------------ expected
    def _expected(self, step: Step) -> dict[str, Any]:
        """The flattened resolved config the step would train (data left as a placeholder)."""
        return flatten(TRAIN_CONFIGS[step.part](step, self.ctx, "<data>").to_dict())

    def _data(self, step: Step) -> _Data:
        """The data the step trains on: from its data step, or (dry run) from the sources."""
        marker = read_marker(step.deps[0]) if step.deps else None
        result = (marker or {}).get("result") or {}
        try:
            return {"lm": self._lm_data, "mt": self._mt_data}[step.part](result)
        except (G2LSTMError, OSError, ValueError) as exc:
            return _Data(error=f"cannot read the data to compare ({exc})")

    def _lm_data(self, result: dict[str, Any]) -> _Data:
        if "data" in result:
            return _Data(lm_fingerprint(Path(result["data"])))
        source = resolve_dataset(
            "ptb", self.ctx.data_dir, download=False, progress=False, verify="none", kind="lm"
        )
        return _Data(lm_fingerprint(source, self.ctx.scale.lm_slice))

    def _mt_data(self, result: dict[str, Any]) -> _Data:
        if "prepared" in result:
            fp = prepared_fingerprint(Path(result["prepared"]))
            if fp is None:
                return _Data(error=f"no prepare.json in {result['prepared']}")
            return _Data(fp)
        return self._mt_sources()

    def _mt_sources(self) -> _Data:
        """Before ``mt-data`` ran: the sha256 of the files it will prepare (sliced as the
        scale says) and the BPE merges; the prepared outputs are compared when it has run."""
        sc = self.ctx.scale
        source = resolve_dataset(
            sc.mt_dataset, self.ctx.data_dir, download=False, progress=False, kind="mt"
        )
        folder = source / "tok" if sc.mt_dataset == "multi30k" else source
        counts = sc.mt_slice or (None, None, None)
        inputs = {}
        for (split, prefix), n in zip(SPLIT_PREFIXES[sc.mt_dataset].items(), counts):
            for lang in ("de", "en"):
                inputs[f"{split}.{lang}"] = file_sha256(folder / f"{prefix}.{lang}", n)
        return _Data(
            inputs=inputs,
            bpe_merges=sc.mt_bpe_merges,
            pending="prepared data compared after mt-data",
        )

    # ------------------------------------------------------------------ comparison
    def _config_diffs(self, task: str, expected: dict[str, Any], run: RunFolder) -> list[str]:
        out = []
        for key in sorted(set(expected) | set(run.config)):
            if key in IGNORED[task]:
                continue
            if key in FROM_DATA[task] and expected.get(key) == 0:
                continue  # taken from the data, which is compared by content
            want, got = expected.get(key), run.config.get(key)
            if want != got:
                out.append(f"{key}={_short(got)} (needed {_short(want)})")
        return out

    def _data_diffs(self, task: str, run: RunFolder, data: _Data) -> list[str]:
        if data.error:
            return [f"data ({data.error})"]
        return {"lm": self._lm_data_diffs, "mt": self._mt_data_diffs}[task](run, data)

    def _lm_data_diffs(self, run: RunFolder, data: _Data) -> list[str]:
        value = str(run.config.get("data"))
        folder = resolve_near(value, run.path, "train.txt")
        if folder is None:  # a dataset name stands for its checksummed files
            try:
                folder = resolve_dataset(
                    value,
                    run.config.get("data_dir") or self.ctx.data_dir,
                    download=False,
                    progress=False,
                    verify="none",
                    kind="lm",
                )
            except (G2LSTMError, OSError):
                return [f"data={value!r} (not found, cannot compare its content)"]
        got = lm_fingerprint(folder)
        bad = [k for k in got if got[k] != data.fingerprint.get(k)]
        return [f"data={value!r} (other content: {', '.join(bad)})"] if bad else []

    def _mt_data_diffs(self, run: RunFolder, data: _Data) -> list[str]:
        value = str(run.config.get("train.data"))
        folder = resolve_near(value, run.path, "prepare.json")
        if folder is None:
            return [f"train.data={value!r} (no prepare.json found, cannot compare it)"]
        if data.fingerprint is None:  # dry run before mt-data: sources and BPE merges
            settings = (prepared_fingerprint(folder) or {}).get("settings") or {}
            merges = (settings.get("config") or {}).get("bpe_merges")
            got = prepared_inputs(folder)
            bad = sorted(k for k in data.inputs if got.get(k) != data.inputs[k])
            out = [f"train.data (other inputs: {', '.join(bad)})"] if bad else []
            if merges != data.bpe_merges:
                out.append(f"bpe_merges={merges} (needed {data.bpe_merges})")
            return out
        got_fp = prepared_fingerprint(folder) or {}
        want = data.fingerprint
        if got_fp.get("settings") != want.get("settings"):
            a, b = flatten(got_fp.get("settings") or {}), flatten(want.get("settings") or {})
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            return [f"train.data (prepared with other settings: {', '.join(keys)})"]
        a, b = got_fp.get("outputs") or {}, want.get("outputs") or {}
        bad = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if bad or got_fp.get("format_version") != want.get("format_version"):
            return [f"train.data (other prepared files: {', '.join(bad) or 'format'})"]
        return []

    def decide(self, step: Step) -> Decision:
        """Whether a finished run satisfies ``step`` (only ``*-train`` steps can be reused)."""
        if not step.kind.endswith("-train"):
            return Decision(step.id)
        own = step.out_dir.resolve() if step.out_dir.exists() else step.out_dir
        runs = [
            r
            for r in scan_runs(self.dirs, skip_marker=POINTER)
            if r.task == step.part
            and r.path != own
            and r.config.get("model.gates.cell") == step.cell
            and r.config.get("train.seed") == step.seed
        ]
        if not runs:
            return Decision(step.id)
        expected = self._expected(step)
        data = self._data(step)
        ignored = IGNORED[step.part]
        compared = {k: v for k, v in expected.items() if k not in ignored}
        digest = short_hash(
            {"task": step.part, "data": data.fingerprint or data.inputs, "config": compared}
        )
        scored = [
            (self._config_diffs(step.part, expected, r) + self._data_diffs(step.part, r, data), r)
            for r in runs
        ]
        same = [r for diffs, r in scored if not diffs and r.finished]
        if same:
            if own_files(step.out_dir):
                why = (
                    f"{step.out_dir} holds files of an earlier training of this step, which "
                    "goes on there (delete that folder to reuse the run instead)"
                )
                return Decision(
                    step.id, None, digest, f"{step.id}: not reusing {same[0].path}: {why}"
                )
            return Decision(step.id, same[0], digest, pending=data.pending)
        live = [r for diffs, r in scored if not diffs and r.training]
        if live and self.wait and not own_files(step.out_dir):
            why = "being trained now with the same config; the step waits for it to end"
            return Decision(
                step.id, None, digest, f"{step.id}: {live[0].path} {why}", waiting_on=live[0]
            )
        diffs, run = min(scored, key=lambda x: (len(x[0]) + (not x[1].finished), str(x[1].path)))
        why = f"differs in {', '.join(diffs)}" if diffs else "same config"
        if not run.finished:
            why += f"; {run.status}"
        if run.training and not diffs and not self.wait:
            why += " (--reuse-wait waits for it instead)"
        return Decision(step.id, None, digest, f"{step.id}: not reusing {run.path}: {why}")

    def preview(self, steps: Sequence[Step]) -> dict[str, Decision]:
        """Decisions for the training steps of ``steps`` that are not done (for the plan)."""
        return {s.id: self.decide(s) for s in steps if s.kind.endswith("-train") and not s.done()}

    def preview_labels(
        self, steps: Sequence[Step], preview: Mapping[str, Decision] | None = None
    ) -> dict[str, str]:
        """``step id -> status`` of the steps not done that will cost (next to) no time: the
        training steps a run satisfies (``reuse <path>``) or will satisfy once its live
        process ends (``wait <path>``), and the ``lm-probe`` steps of adopted runs with kept
        numbers (:func:`~g2lstm.reproduce.probe_file.kept_preview`). The plan table shows
        them and leaves them out of its time; so does the running ETA. ``preview``: this
        finder's :meth:`preview` of ``steps`` if already computed."""
        preview = self.preview(steps) if preview is None else preview
        labels = {k: d.label() for k, d in preview.items() if d.run or d.waiting_on}
        adopted = {s.out_dir: d.run.path for s in steps if (d := preview.get(s.id)) and d.run}
        labels.update(kept_preview(steps, adopted))
        return labels
