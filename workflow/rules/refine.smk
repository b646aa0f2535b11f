rule refine:
    # refine + evaluate of one run form one cluster job (seconds each on a GPU); the SLURM profile bundles
    # several such pairs per submission with group-components
    group:
        "refinement"
    resources:
        mem_mb=mem_for("refine"),
        runtime=runtime_for("refine"),
    input:
        model=layout.MODEL,
        disc=finetuned_disc,
        logit_model=raw_logit_model,
        data=real_data,
    output:
        samples=layout.SAMPLES,
        record=layout.sidecar(layout.SAMPLES),
    params:
        cfg=lambda w: as_json(dg.refine_params(config, w.method, w.dataset, w.model)),
        provenance=lambda w: provenance.refinement(config, w.dataset, w.model, w.source, w.method),
        disc=disc_flag,
        logit_model=logit_model_flag,
        data=data_flag,
        device=config["device"],
    log:
        "results/logs/refine/{dataset}/{model}/{source}/{method}.log",
    benchmark:
        "results/benchmarks/refine/{dataset}/{model}/{source}/{method}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    shell:
        "dgflow-bench refine --dataset {wildcards.dataset} --model-file {input.model} {params.disc} {params.logit_model} {params.data} --params {params.cfg:q} --provenance {params.provenance} --out {output.samples} --device {params.device} --threads {threads} 2> {log}"


rule evaluate:
    group:
        "refinement"
    resources:
        mem_mb=mem_for("evaluate"),
        runtime=runtime_for("evaluate"),
    input:
        samples=layout.SAMPLES,
        data=layout.DATA,
    output:
        metrics=layout.METRICS,
        record=layout.sidecar(layout.METRICS),
    params:
        cfg=lambda w: as_json(dg.evaluate_params(config, w.dataset, w.model, w.source, w.method)),
        provenance=lambda w: provenance.metrics(config, w.dataset, w.model, w.source, w.method),
    log:
        "results/logs/evaluate/{dataset}/{model}/{source}/{method}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{model}/{source}/{method}.tsv"
    conda:
        CONDA_ENV
    shell:
        "dgflow-bench evaluate --samples {input.samples} --data {input.data} --params {params.cfg:q} --provenance {params.provenance} --out {output.metrics} 2> {log}"
