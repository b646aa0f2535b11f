rule report_toy2d:
    resources:
        mem_mb=mem_for("report"),
        runtime=runtime_for("report"),
    input:
        metric_files("toy2d"),
    output:
        csv=report("results/tables/toy2d.csv", caption="../report/toy2d_table.rst", category="Tables"),
        md="results/tables/toy2d.md",
        tex="results/tables/toy2d.tex",
        scatter=report(
            expand("results/figures/toy2d_{dataset}.png", dataset=suite_datasets("toy2d")),
            caption="../report/toy2d_scatter.rst",
            category="Figures",
        ),
        curves=report(
            expand("results/figures/toy2d_{dataset}_steps.png", dataset=suite_datasets("toy2d")),
            caption="../report/toy2d_steps.rst",
            category="Figures",
        ),
    params:
        cfg=as_json(dg.report_params(config, "toy2d")),
        provenance=provenance.report(config, "toy2d") if suite_runs("toy2d") else "",
    log:
        "results/logs/report/toy2d.log",
    benchmark:
        "results/benchmarks/report/toy2d.tsv"
    conda:
        CONDA_ENV
    shell:
        "dgflow-bench report --suite toy2d --metrics {input} --params {params.cfg:q} --tables-stem results/tables/toy2d --figures-dir results/figures 2> {log}"


rule report_text:
    resources:
        mem_mb=mem_for("report"),
        runtime=runtime_for("report"),
    input:
        metric_files("text"),
    output:
        csv=report("results/tables/text_js.csv", caption="../report/text_table.rst", category="Tables"),
        md="results/tables/text_js.md",
        tex="results/tables/text_js.tex",
        samples=report("results/tables/text_samples.md", caption="../report/text_samples.rst", category="Tables"),
    params:
        cfg=as_json(dg.report_params(config, "text")),
        provenance=provenance.report(config, "text") if suite_runs("text") else "",
    log:
        "results/logs/report/text.log",
    benchmark:
        "results/benchmarks/report/text.tsv"
    conda:
        CONDA_ENV
    shell:
        "dgflow-bench report --suite text --metrics {input} --params {params.cfg:q} --tables-stem results/tables/text_js --samples-out {output.samples} 2> {log}"


rule report_images:
    resources:
        mem_mb=mem_for("report"),
        runtime=runtime_for("report"),
    input:
        metric_files("images"),
    output:
        csv=report("results/tables/images_fid.csv", caption="../report/images_table.rst", category="Tables"),
        md="results/tables/images_fid.md",
        tex="results/tables/images_fid.tex",
        is_csv=report("results/tables/images_is.csv", caption="../report/images_is_table.rst", category="Tables"),
        is_md="results/tables/images_is.md",
        is_tex="results/tables/images_is.tex",
        grids=report(
            [f"results/figures/images_{d}_{m}_{s}_samples.png" for d, m, s in suite_runs("images")],
            caption="../report/images_samples.rst",
            category="Figures",
        ),
        curves=report(
            expand("results/figures/images_{dataset}_fid_steps.png", dataset=suite_datasets("images")),
            caption="../report/images_fid_steps.rst",
            category="Figures",
        ),
    params:
        cfg=as_json(dg.report_params(config, "images")),
        provenance=provenance.report(config, "images") if suite_runs("images") else "",
    log:
        "results/logs/report/images.log",
    benchmark:
        "results/benchmarks/report/images.tsv"
    conda:
        CONDA_ENV
    shell:
        "dgflow-bench report --suite images --metrics {input} --params {params.cfg:q} --tables-stem results/tables/images --figures-dir results/figures 2> {log}"
