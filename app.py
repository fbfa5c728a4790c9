"""Kokoro Voice Explorer: the Streamlit entry point. It only routes: pages live in pages/<section>/, logic in explorer/.

Page scripts sit one folder down on purpose: a ``pages/*.py`` beside the entry point switches Streamlit into its
legacy multipage mode until ``st.navigation`` first runs, and a fresh server would then serve a deep link (a shared
Lab recipe) by running the page alone, without this file's session set-up and sidebar.
"""

import streamlit as st

from explorer.app import ui
from explorer.paths import FAVICON_PATH

st.set_page_config(page_title="Kokoro Voice Explorer", page_icon=str(FAVICON_PATH), layout="wide")
ui.enable_stack_dumps()
ui.init_state()

pages = {
    "Explore": [
        st.Page("pages/explore/voices.py", title="Voices", icon=":material/library_music:", default=True),
        st.Page("pages/explore/map.py", title="Map", icon=":material/scatter_plot:"),
        st.Page("pages/explore/groups.py", title="Groups", icon=":material/hub:"),
        st.Page("pages/explore/dimensions.py", title="Dimensions", icon=":material/bar_chart:"),
    ],
    "Listen": [
        st.Page("pages/listen/lab.py", title="Voice Lab", icon=":material/science:"),
        st.Page("pages/listen/ab.py", title="A/B listening", icon=":material/headphones:"),
        st.Page("pages/listen/match.py", title="Match a voice", icon=":material/record_voice_over:"),
    ],
    "Model": [
        st.Page("pages/model/architecture.py", title="Architecture", icon=":material/account_tree:"),
    ],
}
page = st.navigation(pages)
ui.sidebar()
page.run()
ui.sidebar_voice_sources()
