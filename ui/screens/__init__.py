"""The inbox's pages, each a short top-to-bottom Streamlit script run by `ui/inbox.py`."""
