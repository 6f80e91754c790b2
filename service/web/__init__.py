"""The web app: Flask routes, pydantic schemas, errors, metrics, the home page."""
