"""Kokoro Voice Explorer: the Streamlit entry point. It only routes: pages live in pages/, logic in explorer/."""

import streamlit as st

from explorer import ui

st.set_page_config(page_title="Kokoro Voice Explorer", page_icon="🎙️", layout="wide")
ui.init_state()

pages = {
    "Explore": [
        st.Page("pages/voices.py", title="Voices", icon="🗂️", default=True),
        st.Page("pages/map.py", title="Map", icon="🗺️"),
        st.Page("pages/groups.py", title="Groups", icon="👥"),
        st.Page("pages/dimensions.py", title="Dimensions", icon="📊"),
    ],
    "Listen": [
        st.Page("pages/lab.py", title="Voice Lab", icon="🧪"),
        st.Page("pages/ab.py", title="A/B listening", icon="🎧"),
    ],
    "Model": [
        st.Page("pages/architecture.py", title="Architecture", icon="🏗️"),
    ],
}
page = st.navigation(pages)
ui.sidebar()
page.run()
