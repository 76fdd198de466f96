"""The fake TikTok: a standard-library HTTP server that speaks TikTok's APIs (see server.py)."""
