"""The errors the CLI turns into a clean exit status, defined apart from the numerical code so that the CLI
(and every stage that needs no network: data, evaluate, report) starts without importing torch."""

from __future__ import annotations


class CheckpointError(RuntimeError):
    """A model or checkpoint file that cannot be read as what it claims to be."""


class TrainingInterrupted(RuntimeError):
    """SIGTERM arrived: the state was checkpointed and the job should exit so that a rerun resumes."""


class RefinementDiverged(RuntimeError):
    """Raised when refined samples become NaN or Inf, so no table row is ever built from them."""

    def __init__(self, method: str, step: int, step_size: float, detail: str = "", *,
                 step_size_name: str = "step size"):
        """``step_size_name``: the method's knob (its module's ``step_size_name``), so the message says which
        key of the method's block to lower."""
        self.method, self.step, self.step_size, name = method, step, step_size, step_size_name
        msg = (
            f"{method} diverged at step {step} ({name}={step_size:g}): samples contain NaN or Inf. "
            f"Lower {name} in the method's config block and rerun."
        )
        super().__init__(msg + (f" {detail}" if detail else ""))


def hostile_archive(tarball, exc: Exception, config_key: str) -> str:
    """The message for an archive that tarfile's 'data' filter refused (a member with '..', an absolute path or
    a link out): it names the archive, the member and the config key that points past the download."""
    member = getattr(getattr(exc, "tarinfo", None), "name", "?")
    return (f"{tarball}: refused to extract member {member!r} ({exc}); nothing was written outside the "
            f"destination. The archive is damaged or not the release's: delete it and rerun, or extract a "
            f"trusted copy yourself and set {config_key} to it.")


def describe(exc: BaseException, inputs: list[str]) -> str:
    """One or two sentences for a failed stage: what went wrong, naming the file (or key), and the fix. The
    CLI prints this instead of a traceback; ``inputs`` are the stage's input files, to name the one at fault
    when the exception does not (numpy's object-array refusal names none)."""
    import errno
    import tarfile

    if isinstance(exc, tarfile.FilterError):
        member = getattr(getattr(exc, "tarinfo", None), "name", "?")
        return (f"refused to extract an archive member {member!r}: {exc}; nothing was written outside the "
                f"destination. The download is damaged or hostile: delete it and rerun, or extract a trusted "
                f"copy yourself and point the dataset's root at it.")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" writing {exc.filename}" if exc.filename else ""
        return (f"no space left on the device{where}; nothing was half-written (outputs are renamed into place "
                f"only when complete). Free some disk space (or move results/ to a larger disk) and rerun.")
    if isinstance(exc, ValueError) and "Object arrays cannot be loaded" in str(exc):
        culprit = next((path for path in inputs if _holds_object_array(path)), None)
        named = culprit or "an input .npz"
        return (f"{named} holds an object array, which is never unpickled (loading it could run code). "
                f"Delete it and rerun to rebuild it{'' if culprit else ' (inputs: ' + ', '.join(inputs) + ')'}, "
                f"or save plain numeric arrays.")
    if isinstance(exc, (CheckpointError, RefinementDiverged, ValueError, FileNotFoundError)):
        return str(exc)  # these messages are written to name the file or key and the fix
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return (f"cannot read or write{where}: {exc.strerror or exc}. Check that the path exists and is "
                f"writable (permissions, a full or read-only disk) and rerun.")
    first = str(exc).splitlines()[0] if str(exc) else ""
    return (f"{type(exc).__name__}: {first or 'no message'}. This is unexpected: the traceback is in the job's "
            f"log (or rerun with DGFLOW_BENCH_DEBUG=1 to see it).")


def _holds_object_array(path: str) -> bool:
    """Whether an .npz holds an object-dtype member, read from the .npy headers alone (nothing unpickled)."""
    import zipfile

    import numpy as np

    if not str(path).endswith(".npz"):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                with archive.open(name) as member:
                    version = np.lib.format.read_magic(member)
                    header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)(member)
                    if header[2].hasobject:
                        return True
    except (OSError, ValueError, zipfile.BadZipFile):
        return False
    return False
