"""Many listeners, library level: the objects Streamlit shares between sessions, used from many threads at once.

``st.cache_resource`` hands one engine, one audio cache and one recipe context to every session, and Streamlit runs
each session's script in its own thread. Engines serialise their model calls with a lock (``Engine.render``):
concurrent calls would only fight over the same two cores, and kokoro's vocoder draws from torch's global random
generator; validation, the vocab and the G2P (behind its own lock) are shared read-only. ``test_engines.py`` proves
one model call at a time; here eight threads go through the app's own path (``listen.synthesize_cached``) and must each
get their own voice, with the cache's byte bound holding throughout. The same with eight browser sessions on a real
server is ``tests/e2e/test_many_listeners.py``.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from explorer.app import listen
from explorer.audio import AudioCache, audio_cache_key
from explorer.recipe import CentroidAxis, CentroidMove, DimEdit, PCAStep, Recipe, RecipeContext, apply_recipe
from explorer.synth import FIRST_CHUNK_PHONEMES, prepare, synthesize

VOICES = ("af_heart", "am_adam", "bf_emma", "bm_george", "ef_dora", "ff_siwis", "hm_omega", "jf_alpha")
TEXT = "Hello there, how are you today?"
THREADS = len(VOICES)
APP_CHUNKING = {"first_chunk_phonemes": FIRST_CHUNK_PHONEMES}
"""How the app renders."""


def run_together(work, arguments) -> list[BaseException]:
    """Run ``work(argument)`` in one thread per argument, all released at once; return what they raised."""
    barrier = threading.Barrier(len(arguments))
    errors: list[BaseException] = []

    def run(argument) -> None:
        try:
            barrier.wait()
            work(argument)
        except BaseException as error:  # surfaced to the test: a thread's exception would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=run, args=(argument,)) for argument in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.fixture
def one_torch_thread():
    """Torch on one thread: the engine lock serialises renders anyway, and two torch threads on a busy two-core
    machine slow each render several times over (see tests/conftest.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def voices_with_distinct_durations(engine, voices, count: int) -> dict[str, list[np.ndarray]]:
    """The first ``count`` bundled voices whose serial renders of ``TEXT`` differ in their predicted durations,
    with those durations.

    A mix-up between sessions only shows if every session's render is told apart from every other's; how a
    random-weight model rounds differs from CPU to CPU (two of eight fixed voices tied on an Intel Xeon with AMX), so
    the voices are searched for here rather than assumed.
    """
    chosen: dict[str, list[np.ndarray]] = {}
    seen: set[tuple] = set()
    for voice in voices:
        durations = synthesize(TEXT, style=voice.pack, engine=engine, **APP_CHUNKING).durations
        signature = tuple(np.concatenate(durations))
        if signature not in seen:
            seen.add(signature)
            chosen[voice.name] = durations
        if len(chosen) == count:
            return chosen
    pytest.fail(f"only {len(chosen)} of the {len(voices)} voices differ in durations; {count} are needed")


def test_eight_threads_sharing_one_engine_and_cache_each_get_their_own_render(
    tiny_torch_engine, bundled_voices, one_torch_thread
):
    """Eight sessions speak the same text in eight voices at once, twice: each render is its own voice's (its
    predicted durations equal a serial render's, its cache key is its own), and the cache never exceeds its bound."""
    engine = tiny_torch_engine
    serial = voices_with_distinct_durations(engine, bundled_voices, THREADS)
    names = list(serial)
    packs = {name: bundled_voices[name].pack for name in names}
    chunks = [chunk.phonemes for chunk in prepare(TEXT, engine=engine, **APP_CHUNKING).chunks]
    one_render = synthesize(TEXT, style=packs[names[0]], engine=engine, **APP_CHUNKING).audio.nbytes
    cache = AudioCache(int(2.5 * one_render))  # room for two renders: eviction happens all the time
    results: dict[str, list[listen.Render]] = {name: [] for name in names}
    most_bytes, watching = [0], threading.Event()

    def watch() -> None:
        while not watching.wait(0.002):
            most_bytes[0] = max(most_bytes[0], cache.stats().bytes)

    def listener(name: str) -> None:
        for _ in range(2):
            results[name].append(listen.synthesize_cached(TEXT, style=packs[name], engine=engine, cache=cache))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        errors = run_together(listener, names)
    finally:
        watching.set()
        watcher.join()

    assert not errors, errors
    for name, renders in results.items():
        assert len(renders) == 2
        for render in renders:
            assert render.key == audio_cache_key(engine.name, engine.weights, chunks, packs[name], 1.0)
            for got, expected in zip(render.synthesis.durations, serial[name], strict=True):
                np.testing.assert_array_equal(got, expected)
    stats = cache.stats()
    assert most_bytes[0] <= cache.max_bytes and stats.bytes <= cache.max_bytes
    assert 1 <= stats.items <= 2
    assert stats.hits + stats.misses == 2 * THREADS


def test_eight_threads_applying_recipes_on_one_shared_context_get_the_serial_packs(bundled_voices):
    """Eight sessions move sliders at once against the one shared recipe context: every pack equals the serial one,
    so applying a recipe never changes the shared reference."""
    context = RecipeContext.from_voices(bundled_voices)
    recipes = [
        Recipe.single(name).with_edit(edit)
        for name, edit in zip(VOICES, [
            PCAStep("decoder", 0, 2.0), PCAStep("prosody", 3, -1.5), PCAStep("both", 1, 4.0),
            CentroidMove("gender", "female", 0.7), CentroidMove("language", "British English", -0.5),
            CentroidAxis("gender", "male", "female", 1.0), DimEdit.half("scale", "prosody", 1.5),
            DimEdit("set", 10, 20, 0.5),
        ])
    ]
    serial = [apply_recipe(recipe, bundled_voices, context) for recipe in recipes]
    reference = context.packs.copy()
    mismatches: list[int] = []

    def slide(index: int) -> None:
        for _ in range(20):
            if not np.array_equal(apply_recipe(recipes[index], bundled_voices, context), serial[index]):
                mismatches.append(index)

    assert not run_together(slide, range(THREADS))
    assert mismatches == []
    np.testing.assert_array_equal(context.packs, reference)
