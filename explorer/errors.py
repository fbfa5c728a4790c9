"""Typed errors: every failure a person can cause ends in one of these, with a sentence they can act on."""


class ExplorerError(Exception):
    """Base class: the message is meant to be shown to a person as it is."""


class VoiceError(ExplorerError):
    """A voicepack, voice name or voice source is unusable (bad shape, NaN, unknown name, unreadable file)."""


class HubError(ExplorerError):
    """The Hugging Face Hub could not give what was asked (offline, unreachable, missing repo or file)."""


class AnalysisError(ExplorerError):
    """An analysis cannot run on the voices given (too few voices, bad row index, unknown layer)."""


class RecipeError(ExplorerError):
    """A voice recipe is malformed, refers to unknown voices, or asks for absurd amounts."""


class SynthesisError(ExplorerError):
    """Text, phonemes, style or speed cannot be turned into audio."""


class ModelFilesError(ExplorerError):
    """Model files are missing, truncated or do not match their expected hash."""


class MeterUnavailable(ExplorerError):
    """An optional meter cannot run because its package or model is not installed."""
