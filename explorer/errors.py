"""Typed errors: every failure a person can cause ends in one of these, with a sentence they can act on."""

__all__ = [
    "AnalysisError",
    "AxesError",
    "ExplorerError",
    "HubError",
    "MeterUnavailable",
    "ModelFilesError",
    "NoSoundError",
    "RecipeError",
    "SynthesisError",
    "VoiceError",
    "printable",
    "shown",
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


class AxesError(ExplorerError):
    """The named attribute directions (``assets/axes/voice-axes.json``) are missing, damaged or not for this
    explorer, or an attribute or amount is outside what they were calibrated for. The message names the file and
    says how to rebuild it.

    Example:
        >>> import explorer
        >>> try:
        ...     explorer.load_axes("no/such/axes.json")
        ... except explorer.AxesError as error:
        ...     print(error)
        No voice axes file at 'no/such/axes.json': build it with `python -m explorer axes build`.
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


class NoSoundError(SynthesisError):
    """The model rendered no sound for this style (NaN, silence or noise far beyond full scale): the style lies far
    outside the stock voices. A sweep records such a step as one where speech stopped, instead of failing.

    Example:
        >>> import explorer
        >>> import numpy as np
        >>> try:
        ...     explorer.synthesize("Hello.", style=np.full(256, 10.0, np.float32), engine=explorer.load_engine("onnx"))
        ... except explorer.NoSoundError as error:
        ...     print(error)
        This voice renders silence (no sample reaches -60 dBFS): its style is far outside the stock voices, ...
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


def shown(text: object, limit: int = 80) -> str:
    """Return ``text`` quoted and escaped for a message, cut to ``limit`` characters (then marked with ``...``).

    File names, voice names and library errors come from people and files, and a message is printed to terminals and
    logs: a newline there forges a line of output and an ESC sequence is run by the terminal. ``repr`` escapes every
    control and invisible character, so whatever a name holds is shown as characters, on one line.

    Example:
        >>> from explorer.errors import shown
        >>> print(shown("af_heart"))
        'af_heart'
        >>> print(shown("a\\nerror: all good\\x1b[2J"))
        'a\\nerror: all good\\x1b[2J'
        >>> print(shown("x" * 100, limit=5))
        'xxxxx'...
    """
    text = str(text)
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def printable(text: object) -> str:
    """Return ``text`` with every character a terminal would act on (newlines, ESC, other control and format
    characters) written as its escape, the rest (phonemes, accents) as it is: for a line of output built from paths or
    messages a person or a file chose.

    Example:
        >>> from explorer.errors import printable
        >>> print(printable("wrote /tmp/a\\nerror: all good\\x1b[2J/ðɪs.wav"))
        wrote /tmp/a\\nerror: all good\\x1b[2J/ðɪs.wav
    """
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in str(text))
