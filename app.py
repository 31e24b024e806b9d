"""cowdemo app: `streamlit run app.py`. Registers the pages, then runs the chosen one; each page
draws the shared sidebar (models, filters, device) first with `cowdemo.ui.common.sidebar()`.

The page scripts live in `views/`, not `pages/`: a `pages/` folder beside app.py switches on
Streamlit's legacy multipage mode for a fresh server's first visit to a page URL, which then
lists file names (app, home, predict) instead of the navigation below.
"""

import streamlit as st

from cowdemo.ui.common import PAGES

st.set_page_config(page_title="cowdemo", page_icon="🐄", layout="wide")
pages = [
    st.Page(
        path,
        title=title,
        icon=icon,
        default=index == 0,
        url_path=None if index == 0 else title.lower().replace(" ", "-"),
    )
    for index, (path, title, icon) in enumerate(PAGES)
]
st.navigation(pages).run()
