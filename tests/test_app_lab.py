"""The Voice Lab and A/B pages in Streamlit's AppTest: what a person does on each page and what they then see.

The whole app runs (``app.py`` with its navigation and sidebar); engines are stand-ins (the tiny random-weight Kokoro
for the one synthesis that must go through kokoro's code, a tone engine elsewhere) and the recogniser and speaker
encoder are replaced by fakes: the meters have their own tests.
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pyarrow as pa
import pytest
import streamlit as st
import torch
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from explorer import meters
from explorer.app import listen, rating, state, ui
from explorer.app.shared_tests import AnswerStore, SharedTest
from explorer.attributes import load_axes
from explorer.audio import SAMPLE_RATE, read_wav
from explorer.engines import Engine, load_vocab
from explorer.match import Target
from explorer.recipe import (
    AttributeEdit,
    CentroidMove,
    Component,
    DimEdit,
    Mix,
    PCAStep,
    Recipe,
    RecipeContext,
    apply_recipe,
)
from explorer.voices import load_bytes

APP = str(Path(__file__).resolve().parents[1] / "app.py")


class ToneEngine(Engine):
    """A fast stand-in engine: a tone whose pitch follows style dim 0, 50 ms per token."""

    name = "tone"

    def __init__(self) -> None:
        super().__init__(load_vocab(), "tone test weights")

    def _run(self, tokens, style, speed):
        t = np.arange(int(tokens.shape[1] * 1200 / speed)) / SAMPLE_RATE
        return (0.3 * np.sin(2 * np.pi * (150 + 50 * style[0]) * t)).astype(np.float32), None


class CountingEngine:
    """Wraps an engine and counts its model calls."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.renders = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def render(self, *args, **kwargs):
        self.renders += 1
        return self.inner.render(*args, **kwargs)


@pytest.fixture(autouse=True)
def app_environment(monkeypatch):
    """Fresh caches, fake meters, and a tone engine by default."""
    st.cache_data.clear()
    st.cache_resource.clear()

    def fake_measure(audio, sample_rate=SAMPLE_RATE, text=None, references=None):
        similar = tuple((name, 0.9) for name in references or {})
        return meters.Meters(meters.acoustics(audio, sample_rate), None, similar,
                             {"intelligibility": "the recogniser is faked in this test."} if text else {})

    def fake_sweep(renders, text, sample_rate=SAMPLE_RATE, *, start=None, end=None):
        return [meters.SweepPoint(amount, 0.1 * index, 1.0 - 0.1 * index, 0.5, 150.0, len(clip) / sample_rate)
                for index, (amount, clip) in enumerate(renders)]

    monkeypatch.setattr(meters, "measure", fake_measure)
    monkeypatch.setattr(meters, "sweep", fake_sweep)
    engine = CountingEngine(ToneEngine())
    monkeypatch.setattr(ui, "_engine", lambda kind: engine)
    yield engine
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def media(monkeypatch):
    """Every file the app hands to Streamlit's media storage (audio, downloads), by file id."""
    files: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        files[file_id] = path_or_data
        return file_id

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **options):
        file_id = original_deferred(self, data_callable, mimetype, coordinates, file_name, **options)
        files[file_id] = data_callable  # built when the person clicks: see ``clicked_download``
        return file_id

    original_deferred = MediaFileManager.add_deferred
    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", load_and_get_id)
    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return files


def media_bytes(files: dict[str, bytes], url: str) -> bytes:
    return files[Path(url).stem]


def clicked_download(files: dict, button) -> bytes:
    """What a download button hands over when clicked (its file is built then, as in the browser)."""
    return files[button.proto.deferred_file_id]()


def open_page(page: str, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def current_pack(at: AppTest) -> np.ndarray:
    return apply_recipe(Recipe.from_token(at.session_state["recipe_token"]), ui.bundled_voices(),
                        RecipeContext.from_voices(ui.bundled_voices()))


def marker(at: AppTest) -> tuple[float, float]:
    """The Lab voice's position on the Lab's PCA map, read from the chart's marker layer."""
    (chart,) = at.get("vega_lite_chart")[:1]
    spec = json.loads(chart.proto.spec)
    (layer,) = [layer for layer in spec["layer"] if layer.get("mark", {}).get("shape") == "cross"]
    (dataset,) = [d for d in chart.proto.datasets if d.name == layer["data"]["name"]]
    frame = pa.ipc.open_stream(dataset.data.data).read_all().to_pandas()
    return float(frame.x[0]), float(frame.y[0])


def table(at: AppTest, label: str):
    """The one table on the page with ``label`` among its columns or row labels."""
    (frame,) = [df.value for df in at.dataframe if label in df.value.columns or label in df.value.index]
    return frame


def audio_elements(at: AppTest) -> list:
    return list(at.get("audio"))


# ----------------------------------------------------------------------------------------------- Voice Lab


def test_the_lab_opens_on_the_bundled_voices_with_its_readouts_and_a_share_link():
    """A person opens the Lab: the default voice, its recipe, nearest voices, the map and a link to share."""
    at = open_page("pages/listen/lab.py")
    token = at.session_state["recipe_token"]
    assert Recipe.from_token(token) == Recipe.single("af_heart")
    assert at.query_params["recipe"] == token
    assert at.code[0].value == "voice af_heart"
    assert table(at, "distance").voice[0] == "af_heart"
    assert any(f"recipe={token}" in code.value for code in at.code)
    assert not at.warning


def test_moving_a_pca_slider_changes_the_recipe_and_moves_the_map_marker():
    """A person drags the decoder PC1 slider: the recipe gains the step and the cross moves right on the map."""
    at = open_page("pages/listen/lab.py")
    before_token, (x_before, y_before) = at.session_state["recipe_token"], marker(at)
    at.slider(key=state.pca_key("decoder", 0)).set_value(2.0)
    rerun(at)
    assert at.session_state["recipe_token"] != before_token
    assert Recipe.from_token(at.session_state["recipe_token"]).edits == (PCAStep("decoder", 0, 2.0),)
    x_after, y_after = marker(at)
    std = RecipeContext.from_voices(ui.bundled_voices()).pca["decoder"].component_std[0]
    assert x_after - x_before == pytest.approx(2.0 * std, rel=1e-3)
    assert y_after == pytest.approx(y_before, abs=1e-4)
    assert "PCA decoder PC1 +2 std" in at.code[0].value


def test_a_named_slider_moves_the_voice_by_the_calibrated_amount_and_shows_its_measured_effect():
    """A person makes the voice two semitones higher: the recipe gains the attribute edit, and the slider's caption
    says what the build measured there for this voice (its predicted gain) and what it did to the other
    attributes."""
    at = open_page("pages/listen/lab.py")
    slider = at.slider(key=state.attribute_key("pitch"))
    assert slider.label == "Pitch (semitones)"
    slider.set_value(2.0)
    rerun(at)
    assert Recipe.from_token(at.session_state["recipe_token"]).edits == (AttributeEdit("pitch", 2.0),)
    assert "pitch +2 st" in at.code[0].value
    (effect,) = [caption.value for caption in at.caption if caption.value.startswith("For this voice, expect +2.0 ± ")]
    voice = apply_recipe(Recipe(Recipe.from_token(at.session_state["recipe_token"]).base, ()), ui.bundled_voices())
    gain = load_axes().effects(voice, [("pitch", 2.0)])[0].gain
    assert f"it answers {gain:.2f}x as strongly" in effect and gain != 1.0
    assert "cross-talk:" in effect and "pitch range" in effect and "brightness" in effect


def test_a_shared_recipe_with_attribute_edits_opens_on_the_named_sliders():
    recipe = Recipe.single("bm_george").with_edits([AttributeEdit("pace", -10.0), AttributeEdit("energy", 1.0),
                                                    PCAStep("decoder", 0, 1.0)])
    at = open_page("pages/listen/lab.py", {"recipe": recipe.to_token()})
    assert Recipe.from_token(at.session_state["recipe_token"]) == recipe
    assert at.slider(key=state.attribute_key("pace")).value == -10.0
    assert at.slider(key=state.attribute_key("energy")).value == 1.0
    assert at.slider(key=state.attribute_key("pitch")).value == 0.0
    assert not at.warning


def test_a_share_link_opens_on_its_text_language_and_speed_and_the_link_follows_later_edits():
    """The recipient hears what the sender heard: the link sets the sample text, language and speed; an edit after
    that is the listener's own and goes into the link the page shows."""
    shared = {"recipe": Recipe.single("bf_emma").to_token(), "text": "Cheerio, old chap.", "lang": "b",
              "speed": "1.25"}
    at = open_page("pages/listen/lab.py", shared)
    assert [at.session_state[key] for key in (state.SAMPLE_TEXT, state.LANG, state.SPEED)] == [
        "Cheerio, old chap.", "b", 1.25]
    assert not at.warning
    at.text_area(key=state.SAMPLE_TEXT).input("Something else entirely.")
    rerun(at)
    assert at.session_state[state.SAMPLE_TEXT] == "Something else entirely."
    assert at.session_state[state.LAB_SHARED] == {**shared, "text": "Something else entirely."}
    assert any("text=Something+else+entirely." in block.value for block in at.code)


def test_a_share_link_with_an_unusable_language_says_so_and_keeps_the_sessions():
    at = open_page("pages/listen/lab.py", {"recipe": Recipe.single("bf_emma").to_token(), "lang": "zz",
                                           "speed": "1.5"})
    assert at.session_state[state.LANG] == "a" and at.session_state[state.SPEED] == 1.5
    assert [warning.value for warning in at.warning] == [
        "The link's language 'zz' is not one of a, b, e, f, h, i, j, p, z, so the language was kept."]


def test_without_the_axes_file_the_named_sliders_say_how_to_rebuild_it(monkeypatch, tmp_path):
    from explorer import attributes

    monkeypatch.setattr(attributes, "AXES_PATH", tmp_path / "voice-axes.json")
    at = open_page("pages/listen/lab.py")
    assert not [slider for slider in at.slider if slider.key == state.attribute_key("pitch")]
    assert any("python -m explorer axes build" in error.value for error in at.error)
    assert Recipe.from_token(at.session_state["recipe_token"]) == Recipe.single("af_heart")


def test_choosing_a_centroid_target_changes_the_pack():
    """A person moves the voice halfway toward a centroid, then picks another centroid: the pack follows."""
    at = open_page("pages/listen/lab.py")
    unedited = current_pack(at)
    at.radio(key=state.CENTROID_MODE).set_value("toward")
    rerun(at)
    at.slider(key=state.CENTROID_AMOUNT).set_value(0.5)
    rerun(at)
    toward_first = current_pack(at)
    assert not np.allclose(toward_first, unedited)
    other = at.selectbox(key=state.CENTROID_KEY).options[-1]
    at.selectbox(key=state.CENTROID_KEY).set_value(other)
    rerun(at)
    assert Recipe.from_token(at.session_state["recipe_token"]).edits == (CentroidMove("gender", other, 0.5),)
    assert not np.allclose(current_pack(at), toward_first)


def test_a_dim_edit_is_added_and_removed():
    """A person zeroes the prosody half with the slicing form, then removes that edit again."""
    at = open_page("pages/listen/lab.py")
    at.selectbox(key="lab_dim_op").set_value("zero")
    at.radio(key="lab_dim_target").set_value("prosody half")
    rerun(at)
    at.button(key="lab_dim_add").click()
    rerun(at)
    assert Recipe.from_token(at.session_state["recipe_token"]).edits == (DimEdit.half("zero", "prosody"),)
    assert np.all(current_pack(at)[:, 128:] == 0)
    at.button(key="lab_remove_0").click()
    rerun(at)
    assert Recipe.from_token(at.session_state["recipe_token"]).edits == ()


def test_the_export_downloads_load_back_as_the_lab_voice(media):
    """A person exports the edited voice: the .pt and .npz hold [510, 1, 256] packs equal to it, with the recipe."""
    at = open_page("pages/listen/lab.py")
    at.slider(key=state.pca_key("decoder", 1)).set_value(-1.5)
    rerun(at)
    pack = current_pack(at)
    buttons = {button.key: button for button in at.download_button}
    assert set(buttons) == {"lab_download_pt", "lab_download_npz", "lab_download_json"}
    pt = clicked_download(media, buttons["lab_download_pt"])
    assert tuple(torch.load(io.BytesIO(pt), weights_only=True).shape) == (510, 1, 256)
    npz = clicked_download(media, buttons["lab_download_npz"])
    assert np.load(io.BytesIO(npz))["lab_voice"].shape == (510, 1, 256)
    for data, filename in ((pt, "lab_voice.pt"), (npz, "lab_voice.npz")):
        (voice,) = load_bytes(data, filename)
        np.testing.assert_array_equal(voice.pack, pack)
    recipe = Recipe.from_json(clicked_download(media, buttons["lab_download_json"]))
    assert recipe.to_token() == at.session_state["recipe_token"]


def test_a_bad_export_name_is_refused_without_downloads():
    """A person types a path as the voice name: an error, no download buttons, the page goes on."""
    at = open_page("pages/listen/lab.py")
    at.text_input(key="lab_export_name").set_value("../../evil")
    rerun(at)
    assert not at.download_button
    assert at.error


def test_synthesize_with_the_tiny_kokoro_plays_wav_audio_and_then_shows_meters(monkeypatch, tiny_torch_engine, media):
    """A person presses Synthesize: a 24 kHz WAV plays, the meters follow, and replaying renders nothing new."""
    engine = CountingEngine(tiny_torch_engine)
    monkeypatch.setattr(ui, "_engine", lambda kind: engine)
    at = open_page("pages/listen/lab.py")
    at.text_area(key="sample_text").set_value("Hi.")
    rerun(at)
    assert not audio_elements(at)
    at.button(key="lab_synthesize").click()
    rerun(at)
    (audio,) = audio_elements(at)
    samples, rate = read_wav(media_bytes(media, audio.proto.url))
    assert rate == SAMPLE_RATE and samples.size > 0 and np.abs(samples).max() > 0
    meters_table = table(at, "Word error rate")
    assert meters_table.loc["Word error rate", "this voice"].startswith("unavailable: ")
    assert meters_table.loc["Sounds like", "this voice"] == "af_heart 0.90"
    # One model call: the Lab voice is af_heart unedited, so the af_heart render to compare with is the same
    # request and comes from the audio cache.
    assert engine.renders == 1
    rerun(at)
    assert len(audio_elements(at)) == 1 and engine.renders == 1


def test_the_last_render_stays_out_of_date_and_two_renders_compare_back_to_back(monkeypatch, tiny_torch_engine,
                                                                                  media):
    """A person synthesizes, moves a slider (the render stays, marked out of date), synthesizes again, compares the
    two back to back, finds the first among the earlier renders and takes it to the A/B page against the Lab."""
    monkeypatch.setattr(ui, "_engine", lambda kind: tiny_torch_engine)
    at = open_page("pages/listen/lab.py")
    at.text_area(key="sample_text").set_value("Hi.")
    at.button(key="lab_synthesize").click()
    rerun(at)
    (first,) = audio_elements(at)
    first_samples, _ = read_wav(media_bytes(media, first.proto.url))
    at.slider(key=state.pca_key("decoder", 0)).set_value(1.0)
    rerun(at)
    out_of_date = "Out of date: your last render, of " + ui.escape_markdown("voice af_heart.")
    assert any(box.value.startswith(out_of_date) for box in at.info)
    assert len(audio_elements(at)) == 1
    at.button(key="lab_synthesize").click()
    rerun(at)
    assert not any("Out of date" in box.value for box in at.info)
    at.button(key="lab_compare").click()
    rerun(at)
    players = audio_elements(at)
    joined, _ = read_wav(media_bytes(media, players[1].proto.url))
    assert len(joined) == 2 * len(first_samples) + int(0.6 * SAMPLE_RATE)  # one text: two renders of one length
    compared = ui.escape_markdown("First voice af_heart, then voice af_heart; PCA decoder PC1 +1 std.")
    assert any(caption.value == compared for caption in at.caption)
    assert len(at.session_state["lab_history"]) == 2
    at.button(key=state.lab_history_key(0)).click()
    rerun(at)
    assert at.session_state["ab_A_source"] == "recipe string" and at.session_state["ab_B_source"] == "Lab recipe"
    assert Recipe.from_token(at.session_state["ab_A_token"]) == Recipe.single("af_heart")


def test_a_recipe_in_the_query_string_is_restored_into_the_widgets():
    """A person opens a shared link: the Lab shows that recipe's voices, sliders and edits."""
    recipe = Recipe(Mix((Component("bf_emma", 1.0, 0.0), Component("am_adam", 0.0, 1.0))),
                    (PCAStep("prosody", 1, -1.5), CentroidMove("gender", "male", 0.25), DimEdit.single("zero", 3)))
    at = open_page("pages/listen/lab.py", {"recipe": recipe.to_token()})
    assert Recipe.from_token(at.session_state["recipe_token"]) == recipe
    assert at.multiselect(key=state.MIX_VOICES).value == ["bf_emma", "am_adam"]
    assert at.number_input(key=state.prosody_key("bf_emma")).value == 0.0
    assert at.selectbox(key=state.PCA_LAYER).value == "prosody"
    assert at.slider(key=state.pca_key("prosody", 1)).value == -1.5
    assert at.slider(key=state.CENTROID_AMOUNT).value == 0.25
    assert not at.warning



def test_a_kokoro_fastapi_subtraction_opens_in_the_lab_with_a_negative_weight_a_person_can_change():
    """A person opens a link to ``af_heart(2)-am_adam(1)``: the weights show 2 and -1, the out-of-distribution readout
    judges the voice, and setting the subtracted voice's timbre weight to -2 changes the recipe."""
    recipe = Recipe.from_voice_string("af_heart(2)-am_adam(1)")
    at = open_page("pages/listen/lab.py", {"recipe": recipe.to_token()})
    assert Recipe.from_token(at.session_state["recipe_token"]) == recipe
    assert at.number_input(key=state.decoder_key("am_adam")).value == -1.0
    assert at.number_input(key=state.prosody_key("af_heart")).value == 2.0
    assert at.code[0].value == "mix 66.7% af_heart - 33.3% am_adam"
    assert not at.error and not any("was not loaded" in w.value for w in at.warning)
    assert any("nearest stock voice" in box.value for box in [*at.success, *at.info, *at.warning])
    at.number_input(key=state.decoder_key("am_adam")).set_value(-2.0)
    rerun(at)
    changed = Recipe.from_token(at.session_state["recipe_token"])
    assert changed.base.weights("decoder") == {"af_heart": 0.5, "am_adam": -0.5}
    assert changed.base.weights("prosody") == pytest.approx({"af_heart": 2 / 3, "am_adam": -1 / 3})

def _token(text: str) -> str:
    return base64.urlsafe_b64encode(zlib.compress(text.encode())).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    ["%%%<script>alert(1)</script>", "../../etc/passwd", "A" * 20_000, Recipe.single("xx_nobody").to_token(),
     _token('{"hello": 1}'), _token('{"version": 1, "base": {}, "[see](http://evil.example/x.png)": 1}')],
    ids=["markup", "path", "oversize", "unknown voice", "not a recipe", "markdown link in a key"],
)
def test_a_hostile_query_string_gives_a_warning_and_the_default_voice(token):
    """A person opens a broken or malicious link: a warning, the default voice, no traceback, no markup."""
    at = open_page("pages/listen/lab.py", {"recipe": token})
    assert Recipe.from_token(at.session_state["recipe_token"]) == Recipe.single("af_heart")
    (warning,) = at.warning
    assert "The recipe in the link was not loaded" in warning.value
    assert "[see](" not in warning.value and "<script>" not in warning.value
    assert at.query_params["recipe"] == at.session_state["recipe_token"]


def test_voices_picked_on_the_map_become_the_lab_mix():
    """A person picks voices on the Map and opens the Lab: the mix is those voices, the edits stay."""
    at = open_page("pages/listen/lab.py")
    at.slider(key=state.pca_key("decoder", 0)).set_value(1.0)
    rerun(at)
    at.session_state["lab_voices"] = ("bf_emma", "bm_george")
    rerun(at)
    recipe = Recipe.from_token(at.session_state["recipe_token"])
    assert recipe.voice_names == ("bf_emma", "bm_george")
    assert recipe.edits == (PCAStep("decoder", 0, 1.0),)


def test_a_sweep_plots_its_meters_and_plays_every_step():
    """A person runs a 3-step PCA sweep: a chart of WER and similarity, a table, and one player per step."""
    at = open_page("pages/listen/lab.py")
    at.slider(key="lab_sweep_steps").set_value(3)
    rerun(at)
    at.button(key="lab_sweep_run").click()
    rerun(at)
    result = at.session_state["lab_sweep_result"]
    assert [step.amount for step in result.plan.steps] == [-3.0, 0.0, 3.0]
    assert len(audio_elements(at)) == 3
    assert list(table(at, "similarity_to_start").amount) == [-3.0, 0.0, 3.0]
    assert len(at.get("vega_lite_chart")) == 2  # the map and the sweep


# ----------------------------------------------------------------------------------------------- A/B listening


def test_ab_renders_both_sides_with_meters_and_the_difference_heatmap(media):
    """A person compares two stock voices: two WAV players, meters side by side, and where the packs differ."""
    at = open_page("pages/listen/ab.py")
    assert at.selectbox(key="ab_A_voice").value == "af_heart"
    assert at.selectbox(key="ab_B_voice").value == "am_adam"
    assert len(at.get("vega_lite_chart")) == 1  # the difference heatmap needs no synthesis
    at.button(key="ab_synthesize").click()
    rerun(at)
    players = audio_elements(at)
    assert len(players) == 2
    clips = [read_wav(media_bytes(media, player.proto.url))[0] for player in players]
    assert all(clip.size for clip in clips)
    meters_table = table(at, "Word error rate")
    assert list(meters_table.columns) == ["A", "B"]
    assert meters_table.loc["Sounds like", "A"] == "B 0.90"


def test_ab_side_b_plays_the_lab_recipe_once_there_is_one():
    """A person shapes a voice in the Lab, then opens A/B: side B is that recipe."""
    at = open_page("pages/listen/lab.py")
    at.slider(key=state.pca_key("decoder", 0)).set_value(3.0)
    rerun(at)
    token = at.session_state["recipe_token"]
    at.switch_page("pages/listen/ab.py")
    rerun(at)
    assert at.radio(key="ab_B_source").value == "Lab recipe"
    assert "PCA decoder PC1 +3 std" in at.code[1].value
    assert at.session_state["recipe_token"] == token


def test_a_pasted_recipe_string_that_is_broken_shows_an_error_on_its_side():
    """A person pastes garbage as side A's recipe: that side says why, nothing crashes, nothing renders."""
    at = open_page("pages/listen/ab.py")
    at.radio(key="ab_A_source").set_value("recipe string")
    rerun(at)
    at.text_input(key="ab_A_token").set_value("<b>not a recipe</b>")
    rerun(at)
    assert any("URL-safe base64" in error.value for error in at.error)
    assert "ab_synthesize" not in [button.key for button in at.button]


def given_to_match(seconds: float = 3.0, rate: int = 16_000) -> tuple[str, Target]:
    """What the Match page keeps of a recording it was given: a stereo 220 Hz tone at 16 kHz, named "me.wav"."""
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return "0" * 64, Target(np.stack([tone, tone], axis=1), rate, "me.wav", seconds, seconds, 220.0, np.zeros(256))


def test_ab_without_a_recording_says_where_to_give_one_and_plays_nothing():
    at = open_page("pages/listen/ab.py")
    at.radio(key="ab_A_source").set_value("recording")
    rerun(at)
    assert "Upload a recording, or give one on the Match a voice page" in at.info[0].value
    assert "ab_synthesize" not in [button.key for button in at.button]


def test_ab_plays_the_recording_given_to_the_match_page_against_a_voice(media, monkeypatch):
    """A person matched a recording, then hears it on side A, as it is (at 24 kHz, mono), against side B's voice
    saying the text; the recording's word error rate is measured against what they say it says, and the map of
    pack differences says a recording has none."""
    texts = []
    measure = meters.measure
    monkeypatch.setattr(meters, "measure", lambda audio, text=None, references=None: texts.append(text) or
                        measure(audio, text=text, references=references))
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state[state.MATCH_TARGET] = given_to_match()
    at.run()
    at.switch_page("pages/listen/ab.py").run()
    at.radio(key="ab_A_source").set_value("recording")
    rerun(at)
    at.text_input(key="ab_A_transcript").set_value("  Hello there.  ")
    rerun(at)
    (given,) = [c.value for c in at.caption if c.value.startswith("The recording given to Match a voice")]
    assert "me.wav" in given and "3.0 s." in given
    assert any("A recording has no voicepack" in c.value for c in at.caption) and not at.get("vega_lite_chart")
    at.button(key="ab_synthesize").click()
    rerun(at)
    recording, voice = [read_wav(media_bytes(media, player.proto.url))[0] for player in audio_elements(at)]
    assert recording.shape == (3 * SAMPLE_RATE,) and voice.size and not np.array_equal(recording[:voice.size], voice)
    assert texts == ["Hello there.", at.session_state[state.SAMPLE_TEXT]]
    assert list(table(at, "Word error rate").columns) == ["A", "B"]


def test_a_listening_test_with_a_recording_runs_but_cannot_be_shared():
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state[state.MATCH_TARGET] = given_to_match()
    at.run()
    at.switch_page("pages/listen/ab.py").run()
    at.radio(key="ab_A_source").set_value("recording")
    at.radio(key="ab_mode").set_value("blind ABX")
    at.button(key="ab_synthesize").click()
    rerun(at)
    assert len(audio_elements(at)) == 3
    assert any("A test with a recording cannot be shared" in c.value for c in at.caption)
    assert not at.get("expander")


def test_blind_mode_plays_a_hidden_x_and_tells_the_answers_only_when_the_test_is_over():
    """A person turns on blind mode, listens to A, B and X and answers each trial: nothing says whether an answer was
    right until the last of the test's 8 trials, then every trial and the verdict show."""
    at = open_page("pages/listen/ab.py")
    at.session_state["ab_seed"] = 7
    at.radio(key="ab_mode").set_value("blind ABX")
    at.button(key="ab_synthesize").click()
    rerun(at)
    at.selectbox(key="ab_test_length").set_value(8)
    rerun(at)
    assert len(audio_elements(at)) == 3
    assert at.session_state["blind_tally"]["answers"] == []
    for trial in range(8):
        assert len(audio_elements(at)) == 3 and not at.success and not at.error
        at.button(key="ab_choose_A").click()
        rerun(at)
    truths = [listen.draw_trial(7, index).x_is for index in range(8)]
    assert at.session_state["blind_tally"]["answers"] == [truth + "A" for truth in truths]
    right = truths.count("A")
    assert any(f"The test is over: {right} of 8 correct" in block.value for block in at.markdown)
    assert len(audio_elements(at)) == 0 and at.dataframe[0].value["X was"].tolist() == truths
    assert [button.proto.label for button in at.get("download_button")] == ["⬇ CSV", "⬇ JSON"]
    at.button(key="ab_new_test").click()
    rerun(at)
    assert at.session_state["blind_tally"]["answers"] == [] and at.session_state["ab_seed"] != 7


def test_blind_mode_can_say_after_each_trial_whether_the_answer_was_right():
    at = open_page("pages/listen/ab.py")
    at.session_state["ab_seed"] = 7
    at.radio(key="ab_mode").set_value("blind ABX")
    at.button(key="ab_synthesize").click()
    rerun(at)
    at.radio(key="ab_feedback_mode").set_value("after each trial")
    at.button(key="ab_choose_A").click()
    rerun(at)
    truth = listen.draw_trial(7, 0).x_is
    assert any(f"X was {truth}" in message.value for message in [*at.success, *at.error])
    assert any(f"So far: {int(truth == 'A')} of 1 correct" in caption.value for caption in at.caption)


def test_a_preference_test_plays_a_and_b_in_a_random_order_and_states_the_cmos_at_the_end():
    """A person scores the second sample "+2 better" in each of 4 trials: as A and B play in a seeded random order,
    the page turns each score into B against A, and at the end states the CMOS with its interval."""
    at = open_page("pages/listen/ab.py")
    at.session_state["ab_seed"] = 7
    at.radio(key="ab_mode").set_value("preference (CMOS)")
    at.button(key="ab_synthesize").click()
    rerun(at)
    at.selectbox(key="ab_preference_length").set_value(4)
    rerun(at)
    for trial in range(4):
        assert len(audio_elements(at)) == 2 and not at.dataframe
        assert any(f"Trial {trial + 1} of 4" in block.value for block in at.markdown)
        at.select_slider(key=f"ab_score_preference_{trial}_0").set_value(2)
        at.button(key="ab_submit").click()
        rerun(at)
    orders = [rating.preference_order(7, index) for index in range(4)]
    expected = rating.PreferenceTally(tuple(orders), (2, 2, 2, 2))
    assert at.session_state["preference_tally"]["orders"] == orders
    assert any(f"The test is over: {ui.escape_markdown(expected.summary())}" in block.value for block in at.markdown)
    assert at.dataframe[0].value["B against A"].tolist() == [2 if order == "AB" else -2 for order in orders]
    assert [button.proto.label for button in at.get("download_button")] == ["⬇ CSV", "⬇ JSON"]
    assert any("meters are hidden during a test" in caption.value for caption in at.caption)


def test_a_rating_test_hides_the_reference_and_a_low_anchor_among_the_recipes_and_gives_their_medians():
    """A person adds a third recipe, rates one screen (the hidden reference 100, the anchor 10, B 60, C 40) and
    reads each stimulus's median at the end."""
    at = open_page("pages/listen/ab.py")
    at.session_state["ab_seed"] = 5
    at.radio(key="ab_mode").set_value("rating (MUSHRA)")
    rerun(at)
    at.text_area(key="ab_more_recipes").set_value(Recipe.single("bf_emma").to_token())
    rerun(at)
    at.button(key="ab_synthesize").click()
    rerun(at)
    at.selectbox(key="ab_rating_screens").set_value(1)
    rerun(at)
    assert len(audio_elements(at)) == 1 + 4  # the open reference, then four hidden samples
    conditions = (rating.HIDDEN_REFERENCE, "B", "C", rating.LOW_ANCHOR)
    wanted = {rating.HIDDEN_REFERENCE: 100, "B": 60, "C": 40, rating.LOW_ANCHOR: 10}
    for position, index in enumerate(rating.rating_order(5, 0, 4)):
        at.slider(key=f"ab_score_rating_0_{position}").set_value(wanted[conditions[index]])
    at.button(key="ab_submit").click()
    rerun(at)
    results = at.dataframe[0].value
    assert dict(zip(results["stimulus"], results["median"])) == wanted
    summary = ui.escape_markdown("Median rating (middle half) over 1 screen: hidden reference 100 (100-100)")
    assert any(f"The test is over: {summary}" in block.value for block in at.markdown)


@pytest.mark.parametrize(("lines", "message"), [
    ("garbage", ui.escape_markdown("Recipe C: ")),
    ("\n".join([Recipe.single("bf_emma").to_token()] * 5), "at most 4 more recipes")])
def test_a_rating_test_refuses_a_broken_recipe_or_a_fifth_further_one_with_one_sentence(lines, message):
    at = open_page("pages/listen/ab.py")
    at.radio(key="ab_mode").set_value("rating (MUSHRA)")
    rerun(at)
    at.text_area(key="ab_more_recipes").set_value(lines)
    rerun(at)
    assert any(message in error.value for error in at.error)
    assert "ab_synthesize" not in [button.key for button in at.button]


def shared_abx_query(trials: int = 8, seed: int = 11) -> dict[str, str]:
    recipes = (Recipe.single("af_heart").to_token(), Recipe.single("am_adam").to_token())
    return SharedTest("blind ABX", recipes, "Hello there.", "a", 1.0, "auto", trials, seed).to_query()


def test_a_shared_test_link_fixes_the_test_and_pools_every_listener_at_the_end(monkeypatch, tmp_path):
    """Two people open the same test link: each answers 8 trials in an order of their own; the second sees both
    listeners in the results, and the server's store holds all 16 answers."""
    monkeypatch.setenv("EXPLORER_LISTENING_DB", str(tmp_path / "answers.sqlite3"))
    query = shared_abx_query()
    for name in ("Ana", "Ben"):
        at = open_page("pages/listen/ab.py", query)
        assert "ab_mode" not in [radio.key for radio in at.radio]       # the link fixes the test
        at.text_input(key="ab_listener_name").set_value(name)
        at.button(key="ab_synthesize").click()
        rerun(at)
        assert len(audio_elements(at)) == 3
        for _ in range(8):
            at.button(key="ab_choose_A").click()
            rerun(at)
        assert any("The test is over:" in block.value for block in at.markdown)
    everyone = at.dataframe[1].value
    assert sorted(everyone["listener"]) == ["Ana", "Ben"] and everyone["answered"].tolist() == [8, 8]
    assert any("All listeners of this test:" in block.value and "2 listeners" in block.value for block in at.markdown)
    results = AnswerStore(tmp_path / "answers.sqlite3").results(SharedTest.from_query(query))
    assert results.listeners == 2 and results.pooled().trials == 16
    assert "ab_new_test" not in [button.key for button in at.button]  # a listener's answers stand


def test_a_hostile_test_link_is_told_in_one_sentence_and_the_page_opens_as_usual(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_LISTENING_DB", str(tmp_path / "answers.sqlite3"))
    at = open_page("pages/listen/ab.py", {**shared_abx_query(), "trials": "1000000", "text": "<script>x</script>"})
    assert any("this link asks for 1000000" in error.value for error in at.error)
    assert "ab_mode" in [radio.key for radio in at.radio] and not (tmp_path / "answers.sqlite3").exists()


def test_a_test_made_on_the_page_offers_its_link_with_everyones_results(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_LISTENING_DB", str(tmp_path / "answers.sqlite3"))
    at = open_page("pages/listen/ab.py")
    at.session_state["ab_seed"] = 11
    at.radio(key="ab_mode").set_value("blind ABX")
    at.button(key="ab_synthesize").click()
    rerun(at)
    link = next(code.value for code in at.code if "test=abx" in code.value)
    query = {key: values[0] for key, values in parse_qs(urlsplit(link).query).items()}
    test = SharedTest.from_query(query)
    assert test.trials == 12 and test.seed == 11 and test.recipes[0] == Recipe.single("af_heart").to_token()
    assert any("Nobody has answered this test yet." in block.value for block in at.markdown)


class NaNEngine(ToneEngine):
    """A stand-in whose model outputs NaN, as Kokoro does for a style far outside the stock voices."""

    def _run(self, tokens, style, speed):
        audio, durations = super()._run(tokens, style, speed)
        return np.full_like(audio, np.nan), durations


@pytest.mark.parametrize(("page", "button"), [("pages/listen/lab.py", "lab_synthesize"),
                                              ("pages/listen/ab.py", "ab_synthesize")], ids=["Voice Lab", "A/B"])
def test_a_voice_the_model_renders_as_nan_gets_one_sentence_not_a_traceback(monkeypatch, page, button):
    """A person presses Synthesize on a voice Kokoro renders as NaN (issue 21, D3): the page says the style is far
    outside the stock voices, plays nothing and shows no traceback."""
    engine = NaNEngine()
    monkeypatch.setattr(ui, "_engine", lambda kind: engine)
    at = open_page(page)
    at.button(key=button).click()
    rerun(at)
    assert any("far outside the stock voices" in error.value for error in at.error)
    assert not audio_elements(at)
