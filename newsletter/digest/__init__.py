"""Turning ranked papers into a personal email (context, then MJML/Jinja rendering)."""
