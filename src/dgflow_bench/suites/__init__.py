"""The suites (2-D, images, text): each module registers one suite with its datasets, models, importers,
metrics, report and outputs. Adding a suite is one module here plus its schema block."""
