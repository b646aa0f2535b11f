"""What the registries hold for suites, datasets and model sources: light declarations whose heavy code
(metrics, reports, importers, data builders) is imported only when a job runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Optional


@dataclass(frozen=True)
class Modality:
    """How a suite's arrays meet the networks (functions import torch when called)."""

    # npz arrays of the data stage -> facts the networks need (e.g. vocabulary size)
    data_info: Callable[[dict], dict]
    # the 'train' array -> tensor kept in memory for minibatches
    load_train: Callable
    # a minibatch of that tensor, data info -> what the critic reads (and the generator outputs)
    to_model_input: Callable
    # refined samples (model output), storage form ('default', or 'uint8' / 'float32' for images) -> the
    # compact array stored per snapshot
    to_storage: Callable


# (dataset, model, source) runs of one suite -> {output name: [files]}; rule report_<suite> declares them
Outputs = Callable[[list[tuple[str, str, str]]], dict[str, list[str]]]


@dataclass(frozen=True)
class Report:
    """A suite's report: ``build(metric_files, params, outputs)`` writes every file of ``outputs(runs)``;
    ``captions`` maps output names to the Snakemake report's caption files (workflow/report/*.rst)."""

    outputs: Outputs
    build: Callable[[list[str], dict, dict[str, list[str]]], None]
    captions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """One kind of data and everything that differs with it.

    modality: how arrays become network input and samples become stored arrays;
    metrics: () -> an object with prepare(data_file, params, cache_dir), compute(dataset, batches, n,
      prepared, params) and metric_directions(); imported when the evaluate stage runs;
    evaluate_keys: the keys of the config's ``evaluate`` block this suite reads (only these reach its jobs,
      so editing another suite's key reruns nothing here);
    report: its tables and figures;
    importers: source name -> its Importer for this suite's models;
    import_keys: which keys of ``sources.<name>`` the importer reads;
    sample_storage: (the evaluate block) -> the storage form of refined samples (Modality.to_storage), if the
      suite's metrics decide it.
    """

    name: str
    modality: Modality
    metrics: Callable[[], object]
    evaluate_keys: tuple[str, ...]
    report: Report
    importers: dict[str, "Importer"] = field(default_factory=dict)
    import_keys: Callable[[str], bool] = lambda key: True
    sample_storage: Optional[Callable[[dict], str]] = None
    # (generator, latent, path) -> on_checkpoint(step) callback that saves a look at training progress
    preview: Optional[Callable] = None
    # (config, dataset, model, source, method) -> {'setting': 'official' | 'variant', 'official', 'differs'}:
    # how a table cell compares with the authors' settings (settings/official.py), for suites that have them
    official: Optional[Callable] = None


@dataclass(frozen=True)
class DatasetEntry:
    """write(params, seed, out .npz) -> summary; the npz holds 'train' and 'heldout' (+ what the suite needs).
    schema: the JSON schema of ``datasets.<name>`` (usually a $ref into the config schema's definitions);
    check_root(spec, config_key): raises FileNotFoundError / ValueError, naming the fix, when a local
    ``root`` lacks what ``write`` reads (the plan-time check, before any job runs);
    row: the suite's record of the dataset, where its code reads facts per dataset (the image suite: a
    data.image_rows.ImageDataset, found by the metric protocols and reference images);
    source_files(spec): the user's files ``write`` reads (an image folder's images), which the data job takes
    as Snakemake inputs, so that editing, adding or removing one rebuilds the dataset and what is made from it
    (a downloaded archive needs none: it is checked against its published hash)."""

    suite: str
    write: Callable[[dict, int, str], dict]
    schema: dict
    check_root: Optional[Callable[[dict, str], None]] = None
    row: Any = None
    source_files: Optional[Callable[[dict], list[str]]] = None


@dataclass(frozen=True)
class Importer:
    """load(dataset, model, params, download_dir) -> Imported; files(dataset, model, params) -> ({role: file
    name}, {file name: known SHA-256}) in ``local_dir``, for the plan-time check (ValueError if none fit).
    load_corrector(path, dataset, model) -> nn.Module: for a source that publishes each model's density-ratio
    corrector (Imported.files['corrector']), the d_lambda the finetune stage uses instead of training one."""

    load: Callable
    files: Callable[[str, str, dict], tuple[dict, dict]]
    load_corrector: Optional[Callable] = None


@dataclass(frozen=True)
class Source:
    """Where a model's weights come from: trained by the pipeline (`train` rule) or imported."""

    trained: bool
    description: str


class Imported(NamedTuple):
    """What an importer returns: the networks, the latent prior they were made for, and the files read."""

    generator: Any
    critic: Any
    latent: dict
    files: dict  # role -> {'file', 'sha256', 'sha256_checked'}
