"""The gunicorn master of `civil-words serve`: the preloaded app, and SIGHUP reloading the models.

Imported only once the settings are checked (gunicorn reads WEB_CONCURRENCY on import).
"""

from __future__ import annotations

import gc
import sys

from gunicorn.app.base import Application
from gunicorn.arbiter import Arbiter

from service.server.preload import freeze, load_errors


class Server(Application):
    """gunicorn running the preloaded app, with our configuration."""

    def __init__(self, settings, app):
        self.settings = settings
        self.preloaded = app
        super().__init__()

    def load_config(self):
        self.load_config_from_module_name_or_filename("python:service.server.gunicorn_conf")

    def load(self):
        return self.preloaded

    def run(self):
        try:
            ReloadingArbiter(self).run()
        except RuntimeError as e:
            print(f"\nError: {e}\n", file=sys.stderr)
            sys.stderr.flush()
            sys.exit(1)


class ReloadingArbiter(Arbiter):
    """gunicorn's master, with SIGHUP reloading the models.

    gunicorn's own SIGHUP starts new workers and stops the old ones gracefully, but a preloaded
    app is not loaded again: the new workers would fork the old models. Here the master first
    builds a whole new app from MODEL_PATH (every file checked, as at start-up), and only if that
    succeeds makes it the app the new workers fork, then lets gunicorn replace the workers. If
    any file is bad, nothing changes: the old workers keep serving the old set, the file and the
    reason are logged, and the failure is counted.
    """

    def handle_hup(self):
        from service.web import metrics
        from service.web.app import create_app

        self.log.info("SIGHUP: checking the models in %s", self.app.settings.model_path)
        try:
            app = create_app(self.app.settings)
        except load_errors() as e:
            metrics.reloaded(ok=False)
            self.log.error("reload refused, the current models keep serving: %s", e)
            return
        # The old app was frozen (see `freeze`): unfreeze it so that the collection below frees
        # it, in the master only; the old workers keep their own copy until they exit.
        gc.unfreeze()
        self.app.preloaded = self.app.callable = app
        freeze()
        metrics.reloaded(ok=True)
        names = app.extensions["civil_words"].listing.models
        self.log.info("reloaded: %s", ", ".join(f"{m.name} ({m.version})" for m in names))
        super().handle_hup()
