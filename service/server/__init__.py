"""The production server: `civil-words serve`, its gunicorn configuration and access log."""
