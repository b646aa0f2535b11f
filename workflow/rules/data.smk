rule resolved_config:
    resources:
        mem_mb=mem_for("resolved_config"),
        runtime=runtime_for("resolved_config"),
    output:
        "results/config.resolved.json",
    params:
        cfg=as_json(config),
    log:
        "results/logs/resolved_config.log",
    benchmark:
        "results/benchmarks/resolved_config.tsv"
    conda:
        CONDA_ENV
    shell:
        "dgflow-bench resolve-config --params {params.cfg:q} --out {output} 2> {log}"


rule data:
    resources:
        mem_mb=mem_for("data"),
        runtime=runtime_for("data"),
    output:
        data=layout.DATA,
        record=layout.sidecar(layout.DATA),
    params:
        cfg=lambda w: as_json(dg.data_params(config, w.dataset)),
        provenance=lambda w: provenance.data(config, w.dataset),
    log:
        "results/logs/data/{dataset}.log",
    benchmark:
        "results/benchmarks/data/{dataset}.tsv"
    conda:
        CONDA_ENV
    shell:
        "dgflow-bench data --dataset {wildcards.dataset} --params {params.cfg:q} --provenance {params.provenance} --out {output.data} 2> {log}"
