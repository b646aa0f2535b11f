# Every stage's rule, generated from the stage table (src/dgflow_bench/stage_table.py): its output and sidecar,
# its inputs (one per edge of the table), params, provenance and the one line into `dgflow-bench <command>`.
# The shared resources / log / benchmark / conda boilerplate is written here once. The report rules, one per
# suite, are generated in report.smk from the same table. Everything a job runs comes from functions made per
# stage: `shell:` is evaluated when the job runs, when the loop variable names the last stage.


def stage_inputs(stage):
    return lambda wildcards: table.inputs(config, stage, dict(wildcards.items()))


def stage_provenance(stage):
    return lambda wildcards: provenance.of(config, stage, dict(wildcards.items()))


def stage_command(stage):
    def command(wildcards, input, output, threads):
        names = dict(wildcards.items())
        return table.command_line(config, stage, names, dict(input.items()), provenance.of(config, stage, names),
                                  output.out, threads)

    return command


def stage_outputs(stage):
    record = {"record": layout.sidecar(stage.output)} if stage.sealed else {}
    return {"out": stage.output, **record, **stage.extra_outputs}


for stage in table.STAGES.values():
    if stage.output is None:  # the report: report.smk
        continue

    rule:
        name:
            stage.name
        group:
            stage.group
        resources:
            mem_mb=mem_for(stage.name),
            runtime=runtime_for(stage.name),
        input:
            unpack(stage_inputs(stage)),
        output:
            **stage_outputs(stage),
        wildcard_constraints:
            **{name: "|".join(map(re.escape, values)) for name, values in stage.constraints.items()},
        params:
            # its own param too, so that `snakemake --summary` and the params trigger show it
            provenance=stage_provenance(stage),
            command=stage_command(stage),
        log:
            table.log_path(stage, "logs", ".log"),
        benchmark:
            table.log_path(stage, "benchmarks", ".tsv")
        conda:
            CONDA_ENV
        threads: 1
        shell:
            "{params.command} 2> {log}"
