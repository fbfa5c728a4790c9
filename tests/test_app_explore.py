"""The explore pages (Voices, Map, Groups, Dimensions) and the Architecture page, driven through the real app.

Each test opens ``app.py`` in Streamlit's ``AppTest``, switches to a page, works its widgets and checks what a
person would see. Streamlit's caches are cleared around every test; the slow library calls behind them (loading the
bundled voices, analysing them, building the model) are memoised per test session here instead, so the suite stays
fast while every page still runs its own cached helpers. Chart clicks cannot be simulated by ``AppTest``: turning a
map selection into voice names is tested in ``test_charts.py``.
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
import streamlit as st
from streamlit.testing.v1 import AppTest

from explorer import analysis as analysis_module
from explorer.app import ui
from explorer.analysis import LAYERS, layer_slice, nearest_voices
from explorer.engines import SharedEngines
from explorer.g2p import SAMPLE_SENTENCES, phonemize, pronunciation_label
from explorer.recipe import Recipe
from explorer.voices import Voice, VoiceSet

APP = Path(__file__).resolve().parents[1] / "app.py"
PAGES = APP.parent / "pages"
TIMEOUT = 180


@pytest.fixture(scope="session")
def analyses():
    """Analyses already computed in this test session, by voice-set fingerprint and row."""
    return {}


@pytest.fixture(autouse=True)
def app_env(monkeypatch, tmp_path, bundled_voices, analyses):
    """Fresh Streamlit caches, no Hugging Face access, and memoised voice loading and analysis."""

    def analyze(voices, row=None, tsne_layers=()):
        key = (voices.fingerprint(), row, tsne_layers)
        if key not in analyses:
            analyses[key] = analysis_module.analyze(voices, row=row, tsne_layers=tsne_layers)
        return analyses[key]

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "explorer-cache"))
    monkeypatch.setattr(ui, "load_bundled", lambda: bundled_voices)
    monkeypatch.setattr(ui, "analyze", analyze)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(page: str, **state: object) -> AppTest:
    """Run the app, switch to ``pages/<section>/<page>.py`` (with ``state`` put in the session first) and check it ran.

    The app runs once first, on its default page, so that ``st.navigation`` has registered the pages.
    """
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert_ok(app)
    for key, value in state.items():
        app.session_state[key] = value
    app.switch_page(next(PAGES.glob(f"*/{page}.py")).relative_to(APP.parent).as_posix()).run()
    assert_ok(app)
    return app


def assert_ok(app: AppTest) -> None:
    """No exception, and app.py ran around the page (its sidebar holds the engine choice)."""
    assert not app.exception, [e.value for e in app.exception]
    assert [s for s in app.sidebar.selectbox if s.key == "engine_kind"], "app.py's sidebar is missing"



def table(app: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page with a column named ``column`` (tables that take no clicks have no key)."""
    return next(frame.value for frame in app.dataframe if column in frame.value.columns)


def tables(app: AppTest, column: str) -> list[pd.DataFrame]:
    return [frame.value for frame in app.dataframe if column in frame.value.columns]


def charts_on(app: AppTest) -> list:
    return list(app.get("vega_lite_chart"))


def spec(chart) -> dict:
    return json.loads(chart.proto.spec)


def chart_frames(chart) -> dict[str, pd.DataFrame]:
    """The data sets Streamlit sent with an altair chart, by name."""
    return {d.name: pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets}


def markdown_text(app: AppTest) -> str:
    return "\n".join(str(m.value) for m in app.markdown)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# --- Voices ----------------------------------------------------------------------------------------------------------


def test_voices_page_lists_every_bundled_voice_with_its_pack_and_trajectory(bundled_voices):
    """A person opening the app sees all 54 voices, and for af_heart a pack heatmap and a row trajectory."""
    app = open_page("voices")
    shown = table(app, "source")
    assert list(shown["name"]) == bundled_voices.names
    assert set(shown["source"]) == {"bundled"}
    assert app.selectbox(key="voices_voice").value == "af_heart"
    titles = [spec(chart).get("title") for chart in charts_on(app)]
    assert len(titles) == 2 and all("af_heart" in json.dumps(title) for title in titles)


def test_voices_table_lists_each_voices_measured_attributes_so_a_person_can_sort_by_them(bundled_voices):
    """Which voices are the highest, the fastest? The table carries the measured attributes of every stock voice."""
    from explorer.attributes import load_axes

    shown = table(app := open_page("voices"), "pitch (Hz)")
    assert list(shown.columns[-5:]) == ["pitch (Hz)", "pitch range (st)", "pace (/s)", "energy (LUFS)",
                                        "brightness (Hz)"]
    measured = load_axes().table
    assert shown.set_index("name")["pace (/s)"].to_dict() == pytest.approx(
        {name: measured[name]["pace"] for name in bundled_voices.names})
    highest = shown.sort_values("pitch (Hz)").name.iloc[-1]
    assert highest[1] == "f"
    assert any("which voices are the highest, the fastest?" in caption.value for caption in app.caption)


def test_voices_filters_narrow_the_table_and_the_voice_choice(bundled_voices):
    """Filtering by language and then gender leaves only the matching voices in the table and the voice picker."""
    app = open_page("voices")
    app.multiselect(key="voices_filter_language").set_value(["British English"]).run()
    british = [v.name for v in bundled_voices if v.language == "British English"]
    assert list(table(app, "source")["name"]) == british
    app.multiselect(key="voices_filter_gender").set_value(["male"]).run()
    assert_ok(app)
    british_men = [v.name for v in bundled_voices if v.language == "British English" and v.gender == "male"]
    assert 0 < len(british_men) < len(british)
    assert list(table(app, "source")["name"]) == british_men
    assert list(app.selectbox(key="voices_voice").options) == british_men


def test_an_uploaded_pack_joins_the_table_and_can_be_inspected(bundled_voices):
    """Uploading my_voice.npy adds it as an uploaded voice and shows it at once."""
    pack = bundled_voices["af_heart"].pack * 0.5
    app = open_page("voices")
    app.file_uploader(key="voices_upload").set_value([("my_voice.npy", npy_bytes(pack), "application/octet-stream")])
    app.run()
    assert_ok(app)
    shown = table(app, "source")
    assert len(shown) == len(bundled_voices) + 1
    assert shown.set_index("name").loc["my_voice", "source"] == "upload"
    assert any(ui.escape_markdown("my_voice") in s.value for s in app.success)
    assert app.selectbox(key="voices_voice").value == "my_voice"
    assert all("my_voice" in json.dumps(spec(chart).get("title")) for chart in charts_on(app))


def test_a_broken_upload_shows_why_and_the_page_goes_on(bundled_voices):
    """A file of the wrong shape and a file that is not a pack each give an error message, not a traceback."""
    app = open_page("voices")
    app.file_uploader(key="voices_upload").set_value(
        [
            ("wrong.npy", npy_bytes(np.zeros((3, 4), np.float32)), "application/octet-stream"),
            ("junk.pt", b"this is not a torch file", "application/octet-stream"),
        ]
    )
    app.run()
    assert_ok(app)
    errors = [e.value for e in app.error]
    assert any("wrong" in e and "shape" in e for e in errors)
    assert any("junk.pt" in e for e in errors)
    assert len(table(app, "source")) == len(bundled_voices)


def test_voices_put_in_the_session_appear_in_the_table(bundled_voices):
    """Voices another page added to the session (``uploaded_voices``) are listed with their source."""
    extra = Voice.from_array("zz_custom", bundled_voices["bm_george"].pack, "upload")
    app = open_page("voices", uploaded_voices=(extra,))
    shown = table(app, "source").set_index("name")
    assert shown.loc["zz_custom", "language"] == "custom"
    assert shown.loc["zz_custom", "source"] == "upload"


def test_loading_from_hugging_face_offline_says_so_clearly(bundled_voices):
    """Offline, "Load from Hugging Face" shows the Hub error in one sentence and keeps the bundled voices."""
    app = open_page("voices")
    app.selectbox(key="voices_hub_repo").set_value("hexgrad/Kokoro-82M-v1.1-zh")
    app.button(key="voices_hub_load").click().run()
    assert_ok(app)
    assert any("Hugging Face" in e.value and "Kokoro-82M-v1.1-zh" in e.value for e in app.error)
    assert len(table(app, "source")) == len(bundled_voices)


def test_voices_loaded_from_hugging_face_join_the_session(monkeypatch, bundled_voices):
    """When the Hub answers, its voices are added to the session with their hf: source."""
    hub = VoiceSet([Voice.from_array("zf_001", bundled_voices["zf_xiaobei"].pack, "hf:hexgrad/Kokoro-82M-v1.1-zh")])
    monkeypatch.setattr("explorer.voices.load_hub", lambda repo: hub)
    app = open_page("voices")
    app.button(key="voices_hub_load").click().run()
    assert_ok(app)
    shown = table(app, "source").set_index("name")
    assert shown.loc["zf_001", "source"] == "hf:hexgrad/Kokoro-82M-v1.1-zh"
    app.multiselect(key="voices_filter_source").set_value(["hf:hexgrad/Kokoro-82M-v1.1-zh"]).run()
    assert list(table(app, "source")["name"]) == ["zf_001"]


def test_hear_it_plays_the_sample_text_as_wav(monkeypatch, tiny_torch_engine):
    """Clicking "Hear it" speaks the sample text with the chosen voice and plays it; editing the text retires it."""
    monkeypatch.setattr(ui, "_engine", lambda kind, _progress=None: tiny_torch_engine)
    app = open_page("voices")
    app.text_area(key="voices_text").set_value("Hello there.")
    app.selectbox(key="voices_voice").set_value("bf_emma")
    app.button(key="voices_hear").click().run()
    assert_ok(app)
    assert app.session_state["sample_text"] == "Hello there."
    audio = list(app.get("audio"))
    assert len(audio) == 1
    assert audio[0].proto.url
    assert not app.error
    assert any("spoken by Kokoro v1.0 through the torch engine · pronunciation by espeak-ng's British English rules"
               in c.value or "misaki's British English dictionary" in c.value for c in app.caption)
    assert not any("/" in c.value.split("pronunciation by")[-1] for c in app.caption if "pronunciation" in c.value)
    app.text_area(key="voices_text").set_value("Something else.").run()
    assert not list(app.get("audio")), "the player must not offer audio of a text no longer on screen"


def test_a_voice_speaks_its_own_language_by_default_with_that_languages_sample(monkeypatch, tiny_torch_engine):
    """A Spanish voice says the Spanish sample through espeak-ng's Spanish rules; switched to English, it says the
    shared English sample text."""
    spoken = []
    monkeypatch.setattr(ui, "_engine", lambda kind, _progress=None: tiny_torch_engine)
    monkeypatch.setattr(ui, "speak", lambda request, pack, **kw: spoken.append(request) or real_speak(request, pack))
    app = open_page("voices")
    app.selectbox(key="voices_voice").set_value("ef_dora").run()
    assert app.text_area(key="voices_text_e").value == SAMPLE_SENTENCES["e"]
    assert app.selectbox(key="voices_lang").value == "own"
    assert app.text_area(key="voices_text_e").label == "Sample text (Spanish)"
    app.button(key="voices_hear").click().run()
    assert_ok(app)
    assert (spoken[-1].lang, spoken[-1].text) == ("e", SAMPLE_SENTENCES["e"])
    assert any("pronunciation by espeak-ng's Spanish rules" in c.value for c in app.caption)
    app.selectbox(key="voices_lang").set_value("a").run()
    assert app.text_area(key="voices_text").value == app.session_state["sample_text"]
    app.button(key="voices_hear").click().run()
    assert spoken[-1].lang == "a" and spoken[-1].text == app.session_state["sample_text"]


real_speak = ui.speak


def test_a_voice_whose_language_cannot_be_spoken_here_says_what_is_missing():
    app = open_page("voices")
    app.selectbox(key="voices_voice").set_value("jf_alpha").run()
    assert_ok(app)
    assert any(w.value.startswith("Japanese cannot be spoken here:") and "misaki" in w.value for w in app.warning)


def test_mandarin_is_phonemized_offline_by_misakis_dictionary():
    assert pronunciation_label("z") == "misaki's Mandarin Chinese dictionary"
    assert phonemize(SAMPLE_SENTENCES["z"], "z").phonemes


def test_the_voices_filters_survive_a_visit_to_another_page():
    app = open_page("voices")
    app.multiselect(key="voices_filter_language").set_value(["British English"]).run()
    app.switch_page("pages/explore/map.py").run()
    app.switch_page("pages/explore/voices.py").run()
    assert_ok(app)
    assert app.multiselect(key="voices_filter_language").value == ["British English"]
    assert set(table(app, "language")["language"]) == {"British English"}


def test_every_voices_heatmap_uses_one_colour_scale(bundled_voices):
    domains = []
    for name in ("af_heart", "bm_george"):
        app = open_page("voices")
        app.selectbox(key="voices_voice").set_value(name).run()
        heatmap = next(chart for chart in charts_on(app) if "value" in json.dumps(spec(chart).get("encoding", {})))
        domains.append(spec(heatmap)["encoding"]["color"]["scale"]["domain"])
    largest = max(float(np.abs(voice.pack).max()) for voice in bundled_voices)
    assert domains[0] == domains[1] == [pytest.approx(-largest), pytest.approx(largest)]


def wait_for_preloads(timeout: float = 60) -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("preload "):
            thread.join(timeout)


@pytest.mark.parametrize("preload", ["", "0"])
def test_opening_the_voices_page_loads_the_engine_in_the_background_unless_turned_off(monkeypatch, tiny_torch_engine,
                                                                                       preload):
    """The page is drawn first; the engine then loads behind it, once, and "Hear it" uses it without loading."""
    loads = []
    shared = SharedEngines(loader=lambda kind, progress=None: loads.append(kind) or tiny_torch_engine)
    monkeypatch.setattr(ui, "_shared_engines", lambda: shared)
    monkeypatch.setenv("EXPLORER_PRELOAD", preload)
    app = open_page("voices")
    wait_for_preloads()
    assert loads == ([] if preload == "0" else ["auto"])
    app.text_area(key="voices_text").set_value("Hello there.")
    app.button(key="voices_hear").click().run()
    assert_ok(app)
    wait_for_preloads()
    assert loads == ["auto"] and len(list(app.get("audio"))) == 1  # loaded once, whoever asked first


def test_an_engine_variable_that_names_no_engine_is_said_in_the_sidebar_and_at_hear_it(monkeypatch):
    monkeypatch.setenv("EXPLORER_ENGINE", "tensorflow")
    app = open_page("voices")
    assert any("ENGINE='tensorflow' names no engine" in e.value for e in app.sidebar.error)  # _ escaped for markdown
    app.text_area(key="voices_text").set_value("Hello there.")
    app.button(key="voices_hear").click().run()
    assert_ok(app)
    assert any("names no engine" in e.value for e in app.main.error)
    assert not list(app.get("audio"))


# --- Map -------------------------------------------------------------------------------------------------------------


def map_chart(app: AppTest):
    return charts_on(app)[0]


def test_map_layer_and_axes_change_the_plotted_components(bundled_voices, analyses):
    """Choosing the prosody layer and PC3 on x redraws the map with those coordinates."""
    app = open_page("map")
    first = spec(map_chart(app))
    assert "decoder" in first["title"]["text"] and "PC1" in json.dumps(first["layer"][0]["encoding"]["x"])
    app.selectbox(key="map_layer").set_value("prosody")
    app.selectbox(key="map_x").set_value(3).run()
    assert_ok(app)
    chart = map_chart(app)
    assert "prosody" in spec(chart)["title"]["text"]
    assert "PC3" in spec(chart)["layer"][0]["encoding"]["x"]["title"]
    points = next(frame for frame in chart_frames(chart).values() if "name" in frame.columns)
    expected = analyses[(bundled_voices.fingerprint(), None, ())].pca["prosody"].projections
    np.testing.assert_allclose(points["x"], expected[:, 2], rtol=1e-6)
    np.testing.assert_allclose(points["y"], expected[:, 1], rtol=1e-6)


def test_map_colour_and_tsne(bundled_voices):
    """Colouring by gender and switching to t-SNE give a t-SNE map coloured by gender, without PC axis pickers."""
    app = open_page("map")
    app.selectbox(key="map_color").set_value("gender")
    app.radio(key="map_method").set_value("t-SNE").run()
    assert_ok(app)
    chart = spec(map_chart(app))
    assert "t-SNE" in chart["title"]["text"]
    assert chart["layer"][0]["encoding"]["color"]["field"] == "gender"
    assert not [s for s in app.selectbox if s.key in {"map_x", "map_y"}]


@pytest.mark.parametrize("method", ["PCA", "t-SNE"])
def test_map_colours_voices_by_a_measured_attribute_on_a_continuous_scale(bundled_voices, method):
    from explorer.attributes import load_axes

    app = open_page("map")
    app.selectbox(key="map_color").set_value("pitch")
    app.radio(key="map_method").set_value(method).run()
    assert_ok(app)
    chart = map_chart(app)
    color = spec(chart)["layer"][0]["encoding"]["color"]
    assert (color["field"], color["type"], color["title"]) == ("pitch", "quantitative", "Pitch (Hz)")
    (points,) = [frame for frame in chart_frames(chart).values() if "pitch" in frame.columns]
    assert points.set_index("name")["pitch"].to_dict() == pytest.approx(
        {name: values["pitch"] for name, values in load_axes().table.items()})


def test_without_the_axes_file_the_pages_say_how_to_rebuild_it_and_go_on(bundled_voices, monkeypatch, tmp_path):
    from explorer import attributes

    monkeypatch.setattr(attributes, "AXES_PATH", tmp_path / "voice-axes.json")
    app = open_page("voices")
    assert "pitch (Hz)" not in table(app, "source").columns
    assert any("python -m explorer axes build" in caption.value for caption in app.caption)
    app = open_page("map")
    app.selectbox(key="map_color").set_value("pace").run()
    assert_ok(app)
    assert "python -m explorer axes build" in app.error[0].value
    assert spec(map_chart(app))["layer"][0]["encoding"]["color"]["field"] == "language"


def test_map_tsne_perplexity_redraws_the_map_with_the_chosen_value(bundled_voices, analyses):
    """The t-SNE map starts at the default perplexity (18 for 54 voices, 1-53 allowed); choosing 5 redraws it with
    the t-SNE at 5, and the chart says so."""
    app = open_page("map")
    assert not [s for s in app.slider if s.key == "map_perplexity"]  # PCA has no perplexity
    app.radio(key="map_method").set_value("t-SNE").run()
    assert_ok(app)
    slider = app.slider(key="map_perplexity")
    assert (slider.value, slider.min, slider.max) == (18, 1, 53)
    assert "Perplexity 18, seed 0" in spec(map_chart(app))["title"]["subtitle"]
    before = next(frame for frame in chart_frames(map_chart(app)).values() if "name" in frame.columns)
    slider.set_value(5).run()
    assert_ok(app)
    assert "Perplexity 5, seed 0" in spec(map_chart(app))["title"]["subtitle"]
    after = next(frame for frame in chart_frames(map_chart(app)).values() if "name" in frame.columns)
    vectors = analyses[(bundled_voices.fingerprint(), None, ())].vectors
    np.testing.assert_allclose(after[["x", "y"]].to_numpy(), analysis_module.tsne(vectors, "decoder", perplexity=5),
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(after[["x", "y"]].to_numpy(), before[["x", "y"]].to_numpy())


def test_map_shows_which_dims_drive_the_chosen_components(bundled_voices):
    """Under the PCA map, the top dims by loading of the x and y components; choosing PC3 on x shows PC3's dims."""
    app = open_page("map")

    def loadings() -> pd.DataFrame:
        chart = next(chart for chart in charts_on(app) if "Which dims drive" in json.dumps(spec(chart)))
        return next(iter(chart_frames(chart).values()))

    frame = loadings()
    assert list(dict.fromkeys(frame.component)) == ["PC1", "PC2"]
    assert frame[frame.component == "PC1"].dim.tolist()[:3] == [127, 8, 80]  # decoder PC1 (tests/test_analysis.py)
    app.selectbox(key="map_x").set_value(3).run()
    assert_ok(app)
    frame = loadings()
    assert list(dict.fromkeys(frame.component)) == ["PC3", "PC2"]
    assert frame[frame.component == "PC3"].dim.tolist()[:2] == [74, 69]
    app.radio(key="map_method").set_value("t-SNE").run()
    assert not [chart for chart in charts_on(app) if "Which dims drive" in json.dumps(spec(chart))]


def test_map_draws_the_lab_voice_where_its_recipe_puts_it(bundled_voices):
    """With bf_emma as the Lab's recipe, the "Lab voice" marker sits exactly on bf_emma's point."""
    app = open_page("map", recipe_token=Recipe.single("bf_emma").to_token())
    frames = chart_frames(map_chart(app))
    points = next(frame for frame in frames.values() if "name" in frame.columns).set_index("name")
    marker = next(frame for frame in frames.values() if "label" in frame.columns)
    assert list(marker["label"]) == ["Lab voice"]
    np.testing.assert_allclose(marker[["x", "y"]].to_numpy()[0], points.loc["bf_emma", ["x", "y"]].to_numpy(),
                               atol=1e-5)


def test_map_with_a_broken_lab_recipe_warns_and_draws_the_voice_the_lab_will_start_from(bundled_voices):
    """A recipe string that does not parse gives a warning; the cross is where the Lab will start: its defaults."""
    app = open_page("map", recipe_token="not-a-recipe!!")
    assert any("The Lab's voice is drawn from its defaults" in w.value for w in app.warning)
    frames = chart_frames(map_chart(app))
    assert any("label" in frame.columns and list(frame["label"]) == ["Lab voice"] for frame in frames.values())


def test_map_scree_plot_follows_the_layer_and_the_lab_button_names_the_voices(bundled_voices):
    """The scree plot shows the chosen layer's components with the cumulative share; the Lab button is ready."""
    app = open_page("map", lab_voices=("am_adam", "bf_emma"))
    assert set(table(app, "50 %")["layer"]) == set(LAYERS)
    assert "am\\_adam, bf\\_emma" in markdown_text(app)
    assert not app.button(key="map_open_lab").disabled
    app.selectbox(key="map_layer").set_value("both").run()
    scree = next(chart for chart in charts_on(app) if "cumulative" in json.dumps(spec(chart)).lower())
    frame = next(iter(chart_frames(scree).values()))
    assert set(frame["layer"]) == {"both"} and len(frame) == 20


# --- Groups ----------------------------------------------------------------------------------------------------------


def test_groups_centroids_follow_the_chosen_kind(bundled_voices):
    """Grouping by gender lists the female and male centroids with their members."""
    app = open_page("groups")
    groups = table(app, "within variance")
    assert set(groups["group"]) == {v.group for v in bundled_voices}
    app.radio(key="groups_kind").set_value("gender").run()
    assert_ok(app)
    genders = table(app, "within variance").set_index("gender")
    assert set(genders.index) == {"female", "male"}
    assert genders.loc["female", "voices"] == sum(v.gender == "female" for v in bundled_voices)
    assert len(charts_on(app)) == 2


def test_groups_nearest_neighbours_of_a_chosen_voice(bundled_voices, analyses):
    """Choosing bm_george, the prosody dims and 3 neighbours lists the 3 nearest other voices by both metrics."""
    app = open_page("groups")
    app.selectbox(key="groups_voice").set_value("bm_george")
    app.selectbox(key="groups_layer").set_value("prosody")
    app.number_input(key="groups_k").set_value(3).run()
    assert_ok(app)
    result = analyses[(bundled_voices.fingerprint(), None, ())]
    vectors = result.vectors[:, layer_slice("prosody")]
    others = [n for n in result.names if n != "bm_george"]
    target = vectors[result.names.index("bm_george")]
    rest = vectors[[result.names.index(n) for n in others]]
    for metric, shown in zip(("cosine", "euclidean"), tables(app, "voice")):
        expected = nearest_voices(target, rest, others, k=3, metric=metric)
        assert list(shown["voice"]) == [name for name, _ in expected]
        assert "bm_george" not in set(shown["voice"])


# --- Dimensions ------------------------------------------------------------------------------------------------------


def test_dimensions_page_shows_variance_correlation_and_distributions(bundled_voices, analyses):
    """The page lists the top 20 dims and correlated pairs and draws variance, correlation and value charts."""
    app = open_page("dimensions")
    result = analyses[(bundled_voices.fingerprint(), None, ())]
    top = table(app, "rank")
    assert list(top["dim"]) == [dim for dim, _, _ in result.variance.top]
    pairs = table(app, "decoder dim")
    assert list(pairs["decoder dim"]) == [d for d, _, _ in result.correlation.top_pairs]
    assert len(charts_on(app)) == 3
    assert set(table(app, "p50")["half"]) == {"decoder", "prosody"}


def test_the_row_choice_is_shared_by_every_analysis_page(bundled_voices, analyses):
    """Choosing row 20 on Dimensions analyses row 20 there, and Groups opened next uses row 20 too."""
    app = open_page("dimensions")
    app.selectbox(key="dimensions_row").set_value(20).run()
    assert_ok(app)
    row20 = analyses[(bundled_voices.fingerprint(), 20, ())]
    assert list(table(app, "rank")["dim"]) == [dim for dim, _, _ in row20.variance.top]
    assert any("row 20" in c.value for c in app.caption)
    app.switch_page("pages/explore/groups.py").run()
    assert_ok(app)
    assert app.selectbox(key="groups_row").value == 20
    assert any("row 20" in c.value for c in app.caption)


# --- Architecture ----------------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_build(monkeypatch, tiny_kmodel):
    """Make the page build the small test model (the real one takes several seconds), still reading weight files."""
    from explorer import architecture
    from explorer.engines.model import read_weights

    calls = []

    def build_model(config=None, weights=None):
        calls.append(weights)
        if weights is not None:
            read_weights(weights)
        return tiny_kmodel

    monkeypatch.setattr(architecture, "build_model", build_model)
    return calls


@pytest.fixture
def small_host(monkeypatch):
    """A server that may use 1 GiB, as a small Community Cloud container: the page opens on random weights."""
    from explorer import engines

    monkeypatch.setattr(engines, "usable_memory", lambda: 2**30)


def test_architecture_reports_the_parameter_count_of_the_built_model(tiny_build, tiny_kmodel, small_host):
    """The page's parameter total is the model's own count; it says the weights are random; modules expand."""
    app = open_page("architecture")
    assert any("may use 1.0 GiB of memory, less than the 4 GiB" in c.value for c in app.caption)
    total = sum(p.numel() for p in tiny_kmodel.parameters())
    metric = next(m for m in app.metric if m.label == "Parameters")
    assert metric.value == f"{total:,}"
    assert any("random initialisation" in i.value for i in app.info)
    top_level = [name for name, module in tiny_kmodel.named_children() if sum(p.numel() for p in module.parameters())]
    assert len(app.expander) >= len(top_level)
    assert all(any(e.label.startswith(f"{name} (") for e in app.expander) for name in top_level)
    assert charts_on(app)
    assert tiny_build == [None]
    flow = table(app, "step")
    assert flow["module"].iloc[0] == "tokens" and flow["module"].iloc[-1] == "audio"


def test_architecture_depth_and_flow_detail_widgets(tiny_build, small_host):
    """A deeper tree lists more modules, and the flow detail adds the sub-module steps."""
    app = open_page("architecture")
    shallow = tables(app, "own")
    assert max(tree["depth"].max() for tree in shallow) == 2
    flow = len(table(app, "step"))
    app.slider(key="arch_depth").set_value(4)
    app.toggle(key="arch_flow_detail").set_value(True).run()
    assert_ok(app)
    deep = tables(app, "own")
    assert [tree["module"].iloc[0] for tree in deep] == [tree["module"].iloc[0] for tree in shallow]
    assert sum(map(len, deep)) > sum(map(len, shallow))
    assert max(tree["depth"].max() for tree in deep) == 4
    assert len(table(app, "step")) > flow


def test_architecture_offers_only_weights_the_server_has(tiny_build, monkeypatch, tmp_path):
    """No path box a visitor could point at the server's files: random or the offline model's real weights (imported
    into KModel and read as a .pth), and a clear error with the random-weight view when the import fails."""
    from explorer import engines
    from explorer.errors import ModelFilesError

    imported = tmp_path / "kokoro-v1.0-int8-kmodel.pth"
    torch.save({}, imported)
    monkeypatch.setattr(engines, "offline_torch_weights", lambda *args, **kwargs: imported)
    monkeypatch.setattr(engines, "usable_memory", lambda: 16 * 2**30)
    app = open_page("architecture")
    assert not app.text_input
    choice = app.selectbox(key="arch_weights_source")
    assert choice.options[:2] == ["random initialisation (counts, routing and data flow only)",
                                  "official v1.0 weights, from the offline int8 ONNX model"]
    assert choice.value == "offline"  # the real weights, where the server has them and the memory
    assert tiny_build[-1] == str(imported.resolve())
    assert [s.value for s in app.success] == ["Weights: official v1.0 weights, from the offline int8 ONNX model"]
    assert not any(str(tmp_path) in c.value for c in app.caption)  # no server path shown to a visitor
    assert not any("random initialisation" in i.value for i in app.info)

    def broken(*args, **kwargs):
        raise ModelFilesError("Part 2 of the offline ONNX model is missing.")

    monkeypatch.setattr(engines, "offline_torch_weights", broken)
    app.run()
    assert_ok(app)
    assert any("Part 2" in e.value for e in app.error)
    assert any("random initialisation" in i.value for i in app.info)


def test_uploads_named_like_links_or_markup_are_shown_as_their_names(bundled_voices):
    """Uploading www.evil-site.com.npy and '[click me](https://evil.example) **b** $x$.npy': every message that names
    them shows the name as text, with no link, bold, maths or icon (issue 21, D5)."""
    from tests.test_hostile_renders import assert_shows_as_plain_text

    pack = npy_bytes(bundled_voices["af_heart"].pack)
    app = open_page("voices")
    app.file_uploader(key="voices_upload").set_value([
        ("www.evil-site.com.npy", pack, "application/octet-stream"),
        ("[click me](https://evil.example) **b** $x$.npy", pack, "application/octet-stream"),
    ])
    app.run()
    assert_ok(app)
    shown = [element.value for kind in ("success", "error", "warning", "info", "caption", "markdown", "subheader")
             for element in getattr(app, kind) if "evil" in str(element.value)]
    assert len(shown) >= 2, shown  # one message per upload at least
    for markdown in shown:
        assert_shows_as_plain_text(markdown)
