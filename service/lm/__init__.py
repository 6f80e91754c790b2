"""The language model and its file: word lists, counts, training, sampling, the model file.

Plain torch/numpy code: nothing here imports the web app or the server."""
