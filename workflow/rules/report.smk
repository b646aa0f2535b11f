# One report rule per configured suite, named report_<suite>; its outputs and their report captions come
# from the suite (suites/<suite>.py), and the same list is passed to the CLI, which writes exactly those.


def captioned(suite, name, paths):
    caption = SUITES[suite].report.captions.get(name)
    if caption is None:
        return paths
    tables = all(p.startswith("results/tables/") for p in paths)
    return report(paths, caption=f"../report/{caption}", category="Tables" if tables else "Figures")


for suite in configured_suites():

    rule:
        name:
            f"report_{suite}"
        localrule: True
        resources:
            mem_mb=mem_for("report"),
            runtime=runtime_for("report"),
        input:
            metric_files(suite),
        output:
            **{name: captioned(suite, name, paths) for name, paths in report_outputs(suite).items()},
        params:
            suite=suite,
            cfg=as_json(dg.report_params(config, suite)),
            outputs=as_json(report_outputs(suite)),
            provenance=provenance.report(config, suite),
        log:
            f"results/logs/report/{suite}.log",
        benchmark:
            f"results/benchmarks/report/{suite}.tsv"
        conda:
            CONDA_ENV
        shell:
            "dgflow-bench report --suite {params.suite} --metrics {input} --params {params.cfg:q} --outputs {params.outputs:q} 2> {log}"
