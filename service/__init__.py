"""civil-words: a bigram language model of the French Code civil, served over HTTP."""


def create_app(settings=None):
    """Build the Flask application (see `service.web.app`); imported lazily so that the training
    and sampling commands never load the web stack."""
    from service.web.app import create_app as _create_app

    return _create_app(settings)
