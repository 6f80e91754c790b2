"""A bare Flask app answering a small JSON: the floor for the service's per-request cost.

Run under the service's own gunicorn settings:
`gunicorn -c python:service.server.gunicorn_conf bench.hello_app:app`.
"""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return {"hello": "world"}
