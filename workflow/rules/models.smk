rule train:
    resources:
        mem_mb=mem_for("train"),
        runtime=runtime_for("train"),
    input:
        data=layout.DATA,
    output:
        model=layout.TRAINED_MODEL,
        record=layout.sidecar(layout.TRAINED_MODEL),
    params:
        cfg=lambda w: as_json(dg.train_params(config, w.dataset, w.model)),
        provenance=lambda w: provenance.model(config, w.dataset, w.model, "trained"),
        state="results/models/{dataset}/{model}/trained/train-state.pt",
        device=config["device"],
    log:
        "results/logs/train/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{model}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    shell:
        "dgflow-bench train --dataset {wildcards.dataset} --model {wildcards.model} --data {input.data} --params {params.cfg:q} --provenance {params.provenance} --out {output.model} --state {params.state} --device {params.device} --threads {threads} 2> {log}"


rule import_checkpoint:
    resources:
        mem_mb=mem_for("import_checkpoint"),
        runtime=runtime_for("import_checkpoint"),
    output:
        model=layout.MODEL,
        record=layout.sidecar(layout.MODEL),
    wildcard_constraints:
        source="|".join(IMPORTED_SOURCES),
    params:
        cfg=lambda w: as_json(dg.import_params(config, w.source, w.model)),
        provenance=lambda w: provenance.model(config, w.dataset, w.model, w.source),
    log:
        "results/logs/import/{dataset}/{model}/{source}.log",
    benchmark:
        "results/benchmarks/import/{dataset}/{model}/{source}.tsv"
    conda:
        CONDA_ENV
    shell:
        "dgflow-bench import-checkpoint --dataset {wildcards.dataset} --model {wildcards.model} --source {wildcards.source} --params {params.cfg:q} --provenance {params.provenance} --out {output.model} 2> {log}"


rule finetune_discriminator:
    resources:
        mem_mb=mem_for("finetune_discriminator"),
        runtime=runtime_for("finetune_discriminator"),
    input:
        model=layout.MODEL,
        data=layout.DATA,
        base=density_ratio_base,
    output:
        model=layout.DISC,
        record=layout.sidecar(layout.DISC),
        # held-out logistic loss / accuracy at every evaluated step and the step kept
        validation="results/models/{dataset}/{model}/{source}/disc-finetuned.validation.json",
    params:
        cfg=lambda w: as_json(dg.finetune_params(config, w.dataset, w.model, w.source)),
        provenance=lambda w: provenance.discriminator(config, w.dataset, w.model, w.source),
        base=base_model_flag,
        state="results/models/{dataset}/{model}/{source}/finetune-state.pt",
        device=config["device"],
    log:
        "results/logs/finetune/{dataset}/{model}/{source}.log",
    benchmark:
        "results/benchmarks/finetune/{dataset}/{model}/{source}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    shell:
        "dgflow-bench finetune --dataset {wildcards.dataset} --model-file {input.model} {params.base} --data {input.data} --params {params.cfg:q} --provenance {params.provenance} --out {output.model} --state {params.state} --device {params.device} --threads {threads} 2> {log}"
