"""Servers the end-to-end tests start on 127.0.0.0/8: third-party ones and a few of our own."""
