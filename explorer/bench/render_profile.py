"""Where a torch render's time goes, and the floor its convolutions alone set: ``python -m explorer bench profile``.

The torch engine renders the bench corpus (``explorer.bench.speed.CORPUS`` x ``BENCH_VOICES``) once after a warm-up,
its prosody recomputed every time, through :func:`explorer.synth.synthesize`, so RTF and kept audio are the ones
``bench`` reports. Forward hooks on the model's modules (removed afterwards) time:

- the parts: the prosody side (``bert``, ``bert_encoder``, ``predictor``, ``text_encoder``), the decoder's body
  (its blocks before the vocoder), and the vocoder's harmonic source, noise branch, upsampling and residual blocks
  per upsampling stage and ``conv_post``; "rest" is the render's time outside them (STFT and inverse STFT,
  activations and additions between modules, the alignment);
- every ``Conv1d`` and ``ConvTranspose1d``, in seconds and floating-point operations (two per multiply-add), inside
  the part that holds it: the part's own time includes them.

The convolution floor RTF is the convolutions' seconds per second of kept audio: the RTF if nothing else took any
time. Next to their throughput stands that of one dense square matrix product in the vocoder's dtype on the same
threads, the easiest kernel for the CPU, so "the convolutions run near the CPU's peak" is a measured ratio.
Times are wall seconds, hook overhead included (a few microseconds for each of some 600 module calls per
sentence: below the run-to-run noise); the machine may be shared, so the load average is reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING

from explorer.audio import SAMPLE_RATE
from explorer.bench.runs import load_average_now, machine_description, text_table
from explorer.bench.speed import BENCH_VOICES, CORPUS, engine_configs
from explorer.engines import TorchEngine, runnable_precision, torch_precision
from explorer.errors import SynthesisError
from explorer.synth import synthesize
from explorer.voices import load_bundled

if TYPE_CHECKING:
    import torch

__all__ = [
    "MATMUL_SIZE",
    "REST",
    "PartTime",
    "RenderProfile",
    "RenderTimer",
    "conv_flops",
    "default_profile_config",
    "format_profile",
    "profile_config",
    "profile_renders",
]

REST = "rest"
"""The part that holds the render's time outside every hooked module: STFT, inverse STFT and the glue between."""
MATMUL_SIZE = 2048
"""Side of the square matrix product whose throughput stands for the CPU's attainable peak."""


@dataclass(frozen=True)
class PartTime:
    """One part's time over all profiled renders.

    Attributes:
        name: e.g. "bert", "decoder body", "resblocks 1", ``REST``.
        side: "prosody" (text to durations, pitch and energy), "decoder" (prosody to audio) or "both" (``REST``).
        seconds: wall seconds inside the part's modules, its convolutions included.
        share: ``seconds`` over the render's compute seconds.
        conv_seconds: the part's convolutions alone.
        conv_gflop: their floating-point operations, in billions.
    """

    name: str
    side: str
    seconds: float
    share: float
    conv_seconds: float
    conv_gflop: float


@dataclass(frozen=True)
class RenderProfile:
    """What :func:`profile_renders` measured.

    Attributes:
        config: the configuration name, e.g. "torch-bf16".
        weights: the engine's weights description.
        machine: CPU, its vector extensions, core count and Python.
        threads: torch's intra-op threads.
        load_average: the machine's 1-minute load average before and after the renders (other work slows them).
        renders: how many texts were rendered (sentences x voices).
        compute_seconds: the engine's time over the renders (what ``bench``'s RTF divides).
        raw_audio_seconds: the model's audio before its silent edges were cut.
        kept_audio_seconds: the audio ``synthesize`` returned.
        rtf: ``compute_seconds / kept_audio_seconds``.
        prosody_rtf: the prosody side's parts per second of kept audio.
        conv_seconds: every convolution's time.
        conv_gflop: every convolution's operations, in billions.
        conv_gflop_per_audio_second: ``conv_gflop`` per second of kept audio.
        conv_gflops: convolution throughput, ``conv_gflop / conv_seconds``.
        conv_floor_rtf: ``conv_seconds / kept_audio_seconds``: the RTF if everything else took no time.
        matmul_dtype: the vocoder's dtype, in which the matrix product ran.
        matmul_gflops: the best throughput of a ``MATMUL_SIZE`` square matrix product on the same threads.
        parts: the parts in render order, ``REST`` last; their seconds sum to ``compute_seconds``.
    """

    config: str
    weights: str
    machine: str
    threads: int
    load_average: tuple[float, float]
    renders: int
    compute_seconds: float
    raw_audio_seconds: float
    kept_audio_seconds: float
    rtf: float
    prosody_rtf: float
    conv_seconds: float
    conv_gflop: float
    conv_gflop_per_audio_second: float
    conv_gflops: float
    conv_floor_rtf: float
    matmul_dtype: str
    matmul_gflops: float
    parts: list[PartTime]


def conv_flops(conv: torch.nn.Module, input: torch.Tensor, output: torch.Tensor) -> int:
    """Return the floating-point operations of one ``Conv1d`` or ``ConvTranspose1d`` call, two per multiply-add,
    bias left out: ``2 * out * in/groups * kernel * output length`` (transposed: ``2 * in * out/groups * kernel *
    input length``), times the batch.

    Example:
        >>> import torch
        >>> from explorer.bench.render_profile import conv_flops
        >>> conv = torch.nn.Conv1d(4, 6, kernel_size=3, padding=1, groups=2)
        >>> x = torch.zeros(1, 4, 10)
        >>> conv_flops(conv, x, conv(x))  # 2 * 6 * 2 * 3 * 10
        720
    """
    import torch

    kernel = conv.kernel_size[0]
    if isinstance(conv, torch.nn.ConvTranspose1d):
        return 2 * (conv.out_channels // conv.groups) * kernel * input.numel()
    return 2 * (conv.in_channels // conv.groups) * kernel * output.numel()


class _Clock:
    """Sums the wall time of the outermost calls among the modules it is hooked on (nested calls are inside)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0
        self._started = 0.0

    def enter(self, module: torch.nn.Module, args: tuple) -> None:
        if self._depth == 0:
            self._started = perf_counter()
        self._depth += 1

    def leave(self, module: torch.nn.Module, args: tuple, output: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.seconds += perf_counter() - self._started


class _ConvClock(_Clock):
    """A clock on convolutions, which also counts their operations."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def leave(self, module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        super().leave(module, args, output)
        self.flops += conv_flops(module, args[0], output)


def _modules(engine: TorchEngine) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Return the KModel and the generator an engine runs in Python, whose modules the profile times.

    Raises:
        SynthesisError: the engine runs traced graphs, which have no modules to hook.
    """
    model, generator = getattr(engine.runner, "model", None), getattr(engine.runner, "generator", None)
    if model is None or generator is None:
        raise SynthesisError("The profile times kokoro's modules, and this torch engine runs traced graphs: build it "
                             "with TorchEngine(traced=False).")
    return model, generator


def _parts(engine: TorchEngine) -> list[tuple[str, str, list[torch.nn.Module]]]:
    """Return ``(name, side, top modules)`` for each part, in render order; no module lies in two parts."""
    model, generator = _modules(engine)
    decoder = model.decoder
    kernels = generator.num_kernels
    parts = [(name, "prosody", [getattr(model, name)]) for name in ("bert", "bert_encoder", "predictor", "text_encoder")]
    parts.append(("decoder body", "decoder", [child for child in decoder.children() if child is not decoder.generator]))
    parts.append(("harmonic source", "decoder", [generator.f0_upsamp, generator.m_source]))
    for stage in range(generator.num_upsamples):
        parts += [
            (f"noise {stage}", "decoder", [generator.noise_convs[stage], generator.noise_res[stage]]),
            (f"upsample {stage}", "decoder", [generator.ups[stage]]),
            (f"resblocks {stage}", "decoder", list(generator.resblocks[stage * kernels:(stage + 1) * kernels])),
        ]
    parts.append(("conv_post", "decoder", [generator.conv_post]))
    return parts


class RenderTimer:
    """Times a torch engine's parts and convolutions while entered: hooks on its modules, all removed on exit.

    Renders from other threads while it is entered are timed too; profile from one thread.

    Example:
        ``with RenderTimer(engine) as timer: result = synthesize(text, style=pack, engine=engine)``, then
        ``timer.parts(result.compute_seconds)``.
    """

    def __init__(self, engine: TorchEngine):
        self._parts = _parts(engine)
        self._clocks = {name: _Clock() for name, _, _ in self._parts}
        self._conv_clocks = {name: _ConvClock() for name in [*self._clocks, REST]}
        owner = {id(module): name for name, _, tops in self._parts for top in tops for module in top.modules()}
        everything = {id(module): module for root in _modules(engine) for module in root.modules()}
        self._modules = [(module, owner.get(key)) for key, module in everything.items()]
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> RenderTimer:
        import torch

        try:
            for module, part in self._modules:
                clocks = [self._clocks[part]] if part is not None else []
                if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
                    clocks.append(self._conv_clocks[part or REST])
                # A convolution's clock runs inside its part's: entered after it, left before it.
                self._handles += [module.register_forward_pre_hook(clock.enter) for clock in clocks]
                self._handles += [module.register_forward_hook(clock.leave) for clock in reversed(clocks)]
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def conv_seconds(self) -> float:
        """Seconds in every convolution so far."""
        return sum(clock.seconds for clock in self._conv_clocks.values())

    @property
    def conv_flops(self) -> int:
        """Operations of every convolution so far."""
        return sum(clock.flops for clock in self._conv_clocks.values())

    def parts(self, compute_seconds: float) -> list[PartTime]:
        """Return each part's time so far, in render order, and ``REST``: ``compute_seconds`` (the engine's time over
        the same renders) less the parts."""
        timed = [(name, side, self._clocks[name].seconds) for name, side, _ in self._parts]
        timed.append((REST, "both", compute_seconds - sum(seconds for _, _, seconds in timed)))
        return [PartTime(name, side, seconds, seconds / compute_seconds if compute_seconds else 0.0,
                         self._conv_clocks[name].seconds, self._conv_clocks[name].flops / 1e9)
                for name, side, seconds in timed]


def _matmul_gflops(dtype: torch.dtype, size: int = MATMUL_SIZE, repeats: int = 5) -> float:
    """Return the best throughput of ``size`` x ``size`` matrix products in ``dtype`` on torch's threads, after one
    unmeasured product."""
    import torch

    with torch.inference_mode():
        left, right = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
        torch.mm(left, right)
        best = math.inf
        for _ in range(repeats):
            started = perf_counter()
            torch.mm(left, right)
            best = min(best, perf_counter() - started)
    return 2 * size**3 / best / 1e9


def profile_renders(
    engine: TorchEngine,
    config: str,
    sentences: Sequence[str] = CORPUS,
    voices: Sequence[str] = BENCH_VOICES,
) -> RenderProfile:
    """Render every sentence with every voice once, after one unmeasured render, timing the engine's parts.

    The engine's prosody cache is cleared before each render, so each does all of its work, as in ``bench``.

    Args:
        engine: a torch engine.
        config: the name the profile is reported under.
        sentences: the texts; the bench corpus by default.
        voices: bundled voice names; the bench's two by default.

    Returns:
        The profile; its figures are measurements, and the machine may be shared.

    Raises:
        SynthesisError: ``engine`` is not a torch engine running kokoro's modules (``traced=False``).
    """
    import torch

    if not isinstance(engine, TorchEngine):
        raise SynthesisError(f"Profiling times the torch engine's modules; '{config}' runs the {engine.name} engine.")
    generator = _modules(engine)[1]
    packs = load_bundled()
    synthesize(sentences[0], style=packs[voices[0]].pack, engine=engine)  # warm-up, off the clock
    samples_per_frame = 2 * math.prod(up.stride[0] for up in generator.ups) * generator.stft.hop_length
    compute = kept = 0.0
    frames = 0
    load_before = load_average_now()
    with RenderTimer(engine) as timer:
        for voice in voices:
            for sentence in sentences:
                engine.clear_cache()
                result = synthesize(sentence, style=packs[voice].pack, engine=engine)
                compute += result.compute_seconds
                kept += result.seconds
                frames += sum(int(durations.sum()) for durations in result.durations)
    parts = timer.parts(compute)
    conv_seconds, conv_gflop = timer.conv_seconds, timer.conv_flops / 1e9
    dtype = generator.conv_post.weight.dtype
    return RenderProfile(
        config=config,
        weights=engine.weights,
        machine=machine_description(),
        threads=torch.get_num_threads(),
        load_average=(load_before, load_average_now()),
        renders=len(sentences) * len(voices),
        compute_seconds=compute,
        raw_audio_seconds=frames * samples_per_frame / SAMPLE_RATE,
        kept_audio_seconds=kept,
        rtf=compute / kept,
        prosody_rtf=sum(part.seconds for part in parts if part.side == "prosody") / kept,
        conv_seconds=conv_seconds,
        conv_gflop=conv_gflop,
        conv_gflop_per_audio_second=conv_gflop / kept,
        conv_gflops=conv_gflop / conv_seconds if conv_seconds else 0.0,
        conv_floor_rtf=conv_seconds / kept,
        matmul_dtype=str(dtype).removeprefix("torch."),
        matmul_gflops=_matmul_gflops(dtype),
        parts=parts,
    )


def default_profile_config() -> str:
    """Return the torch configuration profiled by default: ``torch-bf16`` where the CPU computes bf16 natively,
    else ``torch-fp32``."""
    return f"torch-{runnable_precision('bf16')}"


def profile_config(config: str | None = None) -> RenderProfile:
    """Build the engine of a bench configuration, running kokoro's modules rather than traced graphs (same audio),
    and profile it (:func:`profile_renders`).

    Args:
        config: a torch configuration of ``explorer.bench.speed.engine_configs()``; None for
            :func:`default_profile_config`.

    Raises:
        SynthesisError: the configuration is not a torch one, or cannot run here.
    """
    config = config or default_profile_config()
    configs = engine_configs()
    torch_configs = [name for name in configs if name.startswith("torch-")]
    if config not in torch_configs:
        raise SynthesisError(f"The profile times the torch engine's modules; '{config}' is not a torch configuration "
                             f"available here: choose one of {', '.join(torch_configs) or 'none (no torch weights)'}.")
    return profile_renders(TorchEngine(precision=torch_precision(config), traced=False), config)


def format_profile(profile: RenderProfile) -> str:
    """Return the profile as people read it: the setting, the headline figures and one line per part."""
    silence = 1 - profile.kept_audio_seconds / profile.raw_audio_seconds if profile.raw_audio_seconds else 0.0
    headers = ["part", "side", "s", "share", "conv s", "conv share", "GFLOP", "conv GFLOP/s"]
    cells = [[part.name, part.side, f"{part.seconds:.3f}", f"{part.share:.1%}", f"{part.conv_seconds:.3f}",
              f"{part.conv_seconds / part.seconds:.0%}" if part.seconds > 0 else "-", f"{part.conv_gflop:.1f}",
              f"{part.conv_gflop / part.conv_seconds:.0f}" if part.conv_seconds > 0 else "-"]
             for part in profile.parts]
    return "\n".join([
        f"machine: {profile.machine}",
        f"config: {profile.config} ({profile.weights}), {profile.threads} torch threads, {profile.renders} renders, "
        f"load average {profile.load_average[0]} before, {profile.load_average[1]} after",
        f"audio: {profile.raw_audio_seconds:.1f} s from the model, {profile.kept_audio_seconds:.1f} s kept "
        f"({silence:.0%} silent edges cut)",
        f"RTF {profile.rtf:.3f} ({profile.compute_seconds:.2f} s / {profile.kept_audio_seconds:.1f} s kept); "
        f"prosody RTF {profile.prosody_rtf:.3f}; convolution floor RTF {profile.conv_floor_rtf:.3f}",
        f"convolutions: {profile.conv_seconds:.2f} s ({profile.conv_seconds / profile.compute_seconds:.0%} of the "
        f"render), {profile.conv_gflop:.0f} GFLOP ({profile.conv_gflop_per_audio_second:.1f} per second of kept "
        f"audio) at {profile.conv_gflops:.0f} GFLOP/s; a {MATMUL_SIZE}x{MATMUL_SIZE} {profile.matmul_dtype} matrix "
        f"product: {profile.matmul_gflops:.0f} GFLOP/s",
        "",
        text_table(headers, cells),
    ])
