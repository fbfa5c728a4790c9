"""Typed errors: every failure a person can cause ends in one of these, with a sentence they can act on."""

__all__ = [
    "AnalysisError",
    "ExplorerError",
    "HubError",
    "MeterUnavailable",
    "ModelFilesError",
    "RecipeError",
    "SynthesisError",
    "VoiceError",
]


class ExplorerError(Exception):
    """Base class: the message is meant to be shown to a person as it is.

    Catch it to handle every failure the explorer reports; anything else escaping is a bug.

    Example:
        >>> import explorer
        >>> try:
        ...     explorer.load_voices("no/such/folder")
        ... except explorer.ExplorerError as error:
        ...     print(error)
        Unknown voice source 'no/such/folder': use 'bundled', 'hf:<owner/repo>', a folder or a file.
    """


class VoiceError(ExplorerError):
    """A voicepack, voice name or voice source is unusable (bad shape, NaN, unknown name, unreadable file).

    Example:
        >>> import explorer
        >>> try:
        ...     explorer.load_folder("no_such_folder")
        ... except explorer.VoiceError as error:
        ...     print(error)
        No voice folder at 'no_such_folder'.
    """


class HubError(ExplorerError):
    """The Hugging Face Hub could not give what was asked (offline, unreachable, missing repo or file).

    Example:
        >>> import explorer
        >>> try:
        ...     explorer.load_voices("hf:kokoro-voice-explorer/no-such-repo")
        ... except explorer.HubError as error:
        ...     print(error.__class__.__name__)
        HubError
    """


class AnalysisError(ExplorerError):
    """An analysis cannot run on the voices given (too few voices, bad row index, unknown layer).

    Example:
        >>> import explorer
        >>> voices = explorer.load_voices()
        >>> try:
        ...     explorer.analyze(voices, row=510)
        ... except explorer.AnalysisError as error:
        ...     print(error)
        Row 510 is out of range: choose 0-509, or none for the mean over rows.
    """


class RecipeError(ExplorerError):
    """A voice recipe is malformed, refers to unknown voices, or asks for absurd amounts.

    Example:
        >>> import explorer
        >>> try:
        ...     explorer.PCAStep("decoder", 0, 50.0)
        ... except explorer.RecipeError as error:
        ...     print(error)
        PCA amount is 50; it must lie between -10 and 10.
    """


class SynthesisError(ExplorerError):
    """Text, phonemes, style or speed cannot be turned into audio.

    Example:
        >>> import explorer
        >>> try:
        ...     explorer.phonemize("Bonjour.", lang="x")
        ... except explorer.SynthesisError as error:
        ...     print(error)
        Unknown language code 'x'; use one of ...
    """


class ModelFilesError(ExplorerError):
    """Model files are missing, truncated or do not match their expected hash.

    Example:
        >>> import explorer
        >>> from explorer.paths import load_config
        >>> try:
        ...     load_config("no-such-config.json")
        ... except explorer.ModelFilesError as error:
        ...     print(error)
        The model config no-such-config.json does not exist.
    """


class MeterUnavailable(ExplorerError):
    """An optional meter cannot run because its package or model is not installed.

    ``explorer.measure`` skips such meters and says why; calling a meter directly raises this.

    Example:
        >>> import explorer
        >>> try:
        ...     raise explorer.MeterUnavailable("resemblyzer is not installed: pip install resemblyzer.")
        ... except explorer.ExplorerError as error:
        ...     print(error)
        resemblyzer is not installed: pip install resemblyzer.
    """
