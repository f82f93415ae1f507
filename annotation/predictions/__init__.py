"""Models at work on a project: registration, trained heads, pre-annotation and transcription jobs.

``services`` writes (registering models, training heads, running jobs), ``selectors`` reads (registered
models, predictions a user may see, score distributions). The jobs run in Celery workers
(``workers.tasks``); this package imports models_zoo, and so torch, only inside the functions that run models.
"""
