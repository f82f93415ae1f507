from django.apps import AppConfig


class CorporaConfig(AppConfig):
    name = "corpora"
    default_auto_field = "django.db.models.BigAutoField"
