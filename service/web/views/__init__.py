"""The API's routes by concern, each a blueprint built from the settings and the model set."""

from service.web.views import model, operations, words

BLUEPRINTS = (words.blueprint, model.blueprint, operations.blueprint)
