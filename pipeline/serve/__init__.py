"""Serving what the matcher stored: the HTTP API and its page, and the HTML report."""
