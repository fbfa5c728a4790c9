"""The app layer: the only code the Streamlit pages import besides the library's core, and the package's only
Streamlit code.

- ``ui``: Streamlit glue: session set-up, cached loaders, the sidebar, speaking through the server's audio cache.
- ``state``: every session-state key, and the Lab's widgets as a ``Recipe`` (``LabState``).
- ``listen``: what the listening pages compute (readouts, cached renders, exports, meters tables, A/B trials),
  free of Streamlit.
- ``timing``: the app's benchmark (``python -m explorer bench app``), driving pages through ``streamlit.testing``.

Nothing outside this package (and the command line's ``bench app``) imports it.
"""
