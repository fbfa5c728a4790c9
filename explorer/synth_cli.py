"""The ``synth``, ``mix`` and ``play`` commands: hear a voice or recipe, write an edited voicepack with its recipe,
play a WAV file on the local audio device."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from explorer.engines import ENGINE_KINDS, auto_choice, load_engine
from explorer.errors import ExplorerError, RecipeError, printable, shown
from explorer.paths import atomic_write_bytes, atomic_write_files, check_output
from explorer.recipe import (
    PT_EXPORT_ADVICE,
    Recipe,
    apply_recipe,
    describe,
    load_recipe,
)
from explorer.voices import load_voices, pack_bytes

__all__ = ["register"]

RECIPE_SUFFIX = ".recipe.json"
_VOICE_HELP = ("a voice name (af_heart), or another Kokoro tool's voice string: Kokoro-FastAPI's "
               "af_bella(2)+af_sky(1) or af_bella-af_sky, hexgrad/kokoro's af_bella,af_sky")


def _output_path(text: str, suffixes: tuple[str, ...]) -> Path:
    """Return the output a person named once its suffix is one of ``suffixes`` and it can be written."""
    path = Path(text)
    if path.suffix.lower() not in suffixes:
        raise ExplorerError(f"Output {shown(path.name)} must end in {' or '.join(suffixes)}.")
    return check_output(path)


def _voice_or_recipe_pack(voice: str | None, recipe: str | None, source: str | None) -> tuple[np.ndarray, object]:
    """Return the pack a ``--voice NAME_OR_VOICE_STRING`` or ``--recipe FILE_OR_STRING`` names, and its recipe.

    A ``--voice`` that names a loaded voice is that voice (a custom voice may be called ``my-voice``); anything else is
    another tool's voice string (``af_bella(2)+af_sky(1)``, ``af_bella-af_sky``, ``af_bella,af_sky``). Recipes are
    applied against the voices of ``source`` (bundled by default).
    """

    voices = load_voices(source)
    if voice is None:
        chosen = load_recipe(recipe)
    else:
        chosen = Recipe.single(voice) if voice in voices else Recipe.from_voice_string(voice)
    return apply_recipe(chosen, voices), chosen


def _play(samples: np.ndarray, rate: int, label: Path | str) -> object:
    """Play ``samples`` to their end on the local output device, print what was played, and return the result."""
    from explorer.audio import play

    result = play(samples, rate, blocking=True)
    if result.played:
        print(printable(f"played {label} ({len(samples) / rate:.2f} s at {rate} Hz) on {result.device}"))
    return result


def _cmd_synth(args: argparse.Namespace) -> None:
    """Check the output, the voice and the text, and only then load the engine (seconds) and render."""
    from explorer.audio import read_wav, wav_bytes
    from explorer.synth import expected_audio_seconds, prepare, synthesize_plan

    out = _output_path(args.out, (".wav",))
    pack, _ = _voice_or_recipe_pack(args.voice, args.recipe, args.voices)
    started = time.perf_counter()
    plan = prepare(args.text, phonemes=args.phonemes, lang=args.lang)
    g2p_seconds = time.perf_counter() - started
    kind, reason = args.engine, None
    if kind == "auto":  # this process renders this text and ends: auto weighs its expected total time
        kind, reason = auto_choice(args.weights, expected_audio_seconds(plan, args.speed))
    engine = load_engine(kind, args.weights)
    result = synthesize_plan(plan, style=pack, engine=engine, speed=args.speed, g2p_seconds=g2p_seconds)
    data = wav_bytes(result.audio, result.sample_rate)
    atomic_write_bytes(out, data)
    print(f"engine: {result.engine} ({result.weights})")
    if reason:
        print(printable(f"auto: {kind}, as {reason}"))
    print(f"g2p: {result.g2p}")
    for note in result.notes:
        print(f"note: {note}")
    print(f"phonemes: {result.phonemes}")
    print(f"audio: {result.seconds:.2f} s, rendered in {result.compute_seconds:.2f} s (real-time factor {result.rtf:.3f})")
    print(printable(f"wrote {out}"))
    if args.play:  # the WAV is the product: without a device it is kept, and the command still succeeds
        sys.stdout.flush()
        played = _play(*read_wav(data), out)  # exactly what the file holds
        if not played.played:
            print(printable(f"warning: {played.reason.removesuffix('.')}; {out} is written."), file=sys.stderr)


def _cmd_mix(args: argparse.Namespace) -> None:
    """Write the pack and its recipe together, or neither: both outputs are checked before the recipe is applied."""
    out = _output_path(args.out, (".pt", ".npz"))
    recipe_path = check_output(out.with_name(out.stem + RECIPE_SUFFIX))
    pack, recipe = _voice_or_recipe_pack(args.voice, args.recipe, args.voices)
    data = pack_bytes(pack, out.suffix, out.stem if out.suffix == ".npz" else "voice")
    atomic_write_files({out: data, recipe_path: recipe.to_json().encode()})
    print(describe(recipe))
    strings, reasons = {}, []
    for style, tool in (("fastapi", "Kokoro-FastAPI"), ("kokoro", "kokoro")):
        try:
            strings[tool] = recipe.to_voice_string(style)
        except RecipeError as error:
            reasons.append(error)
    for tool, text in strings.items():
        print(printable(f"{tool} voice: {text}"))
    if not strings:  # Kokoro-FastAPI's reason (it reads more recipes than kokoro), less its advice to export a .pt
        reason = str(reasons[0]).removesuffix(f"; {PT_EXPORT_ADVICE}.")
        print(printable(f"note: {reason}; give those tools {out.name}."))
    print(printable(f"wrote {out}"))
    print(printable(f"wrote {recipe_path}"))


def _cmd_play(args: argparse.Namespace) -> None:
    """Check the file (exists, audio, not empty, not huge) before PortAudio is asked for a device."""
    from explorer.audio import read_audio_file

    result = _play(*read_audio_file(args.file), args.file)
    if not result.played:
        raise ExplorerError(result.reason)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``synth``, ``mix`` and ``play`` to the command line."""
    synth = commands.add_parser("synth", help="speak text or phonemes with a voice or a recipe into a WAV file")
    said = synth.add_mutually_exclusive_group(required=True)
    said.add_argument("--text", help="text to speak (in --lang)")
    said.add_argument("--phonemes", help="raw phonemes (Kokoro's symbols); unknown symbols are dropped with a note")
    who = synth.add_mutually_exclusive_group(required=True)
    who.add_argument("--voice", help=_VOICE_HELP)
    who.add_argument("--recipe", help="a recipe: a .json file, JSON text or a share string")
    synth.add_argument("--voices", help="where voices come from: bundled (default), hf:<repo>, a folder or a file")
    synth.add_argument("--engine", choices=ENGINE_KINDS, default="auto")
    synth.add_argument("--weights", help="a local kokoro-v1_0.pth (torch) or .onnx file")
    synth.add_argument("--speed", type=float, default=1.0, help="speaking rate 0.25-4 (default 1)")
    synth.add_argument("--lang", default="a", help="language code: a b e f h i p j z (default a)")
    synth.add_argument("--out", required=True, help="the WAV file to write (24 kHz)")
    synth.add_argument("--play", action="store_true",
                       help="then play the WAV on the local audio device (without one: a warning, the WAV is kept)")
    synth.set_defaults(handler=_cmd_synth)

    mix = commands.add_parser("mix", help="apply a recipe or voice string and write the voicepack (.pt or .npz) with "
                                          "its recipe")
    what = mix.add_mutually_exclusive_group(required=True)
    what.add_argument("--recipe", help="a .json file, JSON text or a share string")
    what.add_argument("--voice", help=_VOICE_HELP)
    mix.add_argument("--voices", help="where voices come from: bundled (default), hf:<repo>, a folder or a file")
    mix.add_argument("--out", required=True, help="VOICE.pt (kokoro KPipeline) or VOICE.npz (kokoro-onnx)")
    mix.set_defaults(handler=_cmd_mix)

    play = commands.add_parser("play", help="play an audio file (WAV) on the local audio device")
    play.add_argument("file", help="the file to play (WAV, or another format libsndfile reads; up to 64 MiB)")
    play.set_defaults(handler=_cmd_play)

