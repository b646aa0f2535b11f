rule train:
    resources:
        mem_mb=mem_for("train"),
        runtime=runtime_for("train"),
    input:
        data="results/data/{dataset}.npz",
    output:
        "results/models/{dataset}/{model}/trained/model.pt",
    params:
        cfg=lambda w: as_json(dg.train_params(config, w.dataset, w.model)),
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
        "dgflow-bench train --dataset {wildcards.dataset} --model {wildcards.model} --data {input.data} --params {params.cfg:q} --out {output} --state {params.state} --device {params.device} --threads {threads} 2> {log}"


rule import_checkpoint:
    resources:
        mem_mb=mem_for("import_checkpoint"),
        runtime=runtime_for("import_checkpoint"),
    output:
        "results/models/{dataset}/{model}/{source}/model.pt",
    wildcard_constraints:
        source="|".join(IMPORTED_SOURCES),
    params:
        cfg=lambda w: as_json(dg.import_params(config, w.source, w.model)),
    log:
        "results/logs/import/{dataset}/{model}/{source}.log",
    benchmark:
        "results/benchmarks/import/{dataset}/{model}/{source}.tsv"
    conda:
        CONDA_ENV
    shell:
        "dgflow-bench import-checkpoint --dataset {wildcards.dataset} --model {wildcards.model} --source {wildcards.source} --params {params.cfg:q} --out {output} 2> {log}"


rule finetune_discriminator:
    resources:
        mem_mb=mem_for("finetune_discriminator"),
        runtime=runtime_for("finetune_discriminator"),
    input:
        model="results/models/{dataset}/{model}/{source}/model.pt",
        data="results/data/{dataset}.npz",
        base=density_ratio_base,
    output:
        model="results/models/{dataset}/{model}/{source}/disc-finetuned.pt",
        # held-out logistic loss / accuracy at every evaluated step and the step kept
        validation="results/models/{dataset}/{model}/{source}/disc-finetuned.validation.json",
    params:
        cfg=lambda w: as_json(dg.finetune_params(config, w.dataset, w.model, w.source)),
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
        "dgflow-bench finetune --dataset {wildcards.dataset} --model-file {input.model} {params.base} --data {input.data} --params {params.cfg:q} --out {output.model} --state {params.state} --device {params.device} --threads {threads} 2> {log}"
