"""Sentio's model zoo: model cards, offline loaders, label mapping, trained heads. Never imports Django.

Start with ``models_zoo.registry`` (cards, ``default_registry()``, ``load_model()``), ``models_zoo.labels``
(mapping a model's labels onto a project's) and ``models_zoo.backends.heads`` (heads a project trains).
Submodules import their heavy libraries (torch, transformers, faster-whisper) only when a model loads.
"""
