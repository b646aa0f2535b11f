# One report rule per configured suite, named report_<suite>, generated from the stage table's `report` stage
# (its inputs, params, provenance and CLI line, made here: `shell:` is evaluated when the job runs, when the
# loop variable names the last suite); its outputs and their report captions come from the suite
# (suites/<suite>.py), and the same list is passed to the CLI, which writes exactly those.
REPORT = table.STAGES["report"]


def captioned(suite, name, paths):
    caption = SUITES[suite].report.captions.get(name)
    if caption is None:
        return paths
    tables = all(p.startswith("results/tables/") for p in paths)
    return report(paths, caption=f"../report/{caption}", category="Tables" if tables else "Figures")


for suite in configured_suites():
    names = {"suite": suite}

    rule:
        name:
            f"report_{suite}"
        localrule: True
        resources:
            mem_mb=mem_for("report"),
            runtime=runtime_for("report"),
        input:
            **table.inputs(config, REPORT, names),
        output:
            **{name: captioned(suite, name, paths) for name, paths in report_outputs(suite).items()},
        params:
            provenance=provenance.of(config, REPORT, names),
            command=table.command_line(config, REPORT, names, table.inputs(config, REPORT, names),
                                       given={"--outputs": as_json(report_outputs(suite))}),
        log:
            table.log_path(REPORT, "logs", ".log", names),
        benchmark:
            table.log_path(REPORT, "benchmarks", ".tsv", names)
        conda:
            CONDA_ENV
        shell:
            "{params.command} 2> {log}"
