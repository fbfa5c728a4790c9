"""A fake ``sounddevice`` for the playback tests: an output device that records what it was given, one that is
missing, and a PortAudio library that is missing (``sounddevice`` then raises OSError on import)."""

from __future__ import annotations

import importlib.abc
import sys
import types

import pytest


class PortAudioError(Exception):
    """What ``sounddevice`` raises when PortAudio fails (no device, a device that refuses the stream)."""


def fake_sounddevice(device: str | None = "Speakers", fail_on_play: bool = False) -> types.ModuleType:
    """Return a module standing in for ``sounddevice``: ``device`` is the default output's name (None: there is no
    output device); ``plays`` records ``(data, samplerate, blocking)`` per ``play``, ``waits`` counts ``wait``."""
    module = types.ModuleType("sounddevice")
    module.PortAudioError = PortAudioError
    module.plays = []
    module.waits = 0

    def query_devices(device_id=None, kind=None):
        if device is None:
            raise PortAudioError("Error querying device -1")
        return {"name": device, "max_output_channels": 2, "default_samplerate": 48000.0}

    def play(data, samplerate=None, blocking=False, **kwargs):
        if fail_on_play:
            raise PortAudioError("Error opening OutputStream: Invalid sample rate [PaErrorCode -9997]")
        module.plays.append((data.copy(), samplerate, blocking))

    def wait():
        module.waits += 1

    module.query_devices, module.play, module.wait = query_devices, play, wait
    return module


class _PortAudioMissing(importlib.abc.MetaPathFinder):
    """Makes ``import sounddevice`` raise OSError, as the real package does without the PortAudio library."""

    def find_spec(self, name, path=None, target=None):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")


def install(monkeypatch: pytest.MonkeyPatch, module: types.ModuleType | None) -> None:
    """Make ``import sounddevice`` give ``module``, or raise OSError (PortAudio missing) when ``module`` is None."""
    if module is None:
        monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
        monkeypatch.setattr(sys, "meta_path", [_PortAudioMissing(), *sys.meta_path])
    else:
        monkeypatch.setitem(sys.modules, "sounddevice", module)
