from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.models import User
        from django.db.models.signals import pre_save

        from accounts.signals import user_pre_save

        pre_save.connect(user_pre_save, sender=User, dispatch_uid="accounts.rotate_tokens_on_credentials")
