from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.demo_data import DEMO_ACCOUNTS
from accounts.services import DemoRefused, demo_install


class Command(BaseCommand):
    help = "Create the demo accounts, the demo corpus (with espeak-ng speech) and the demo project."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = demo_install()
        except DemoRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"Demo ready: corpus '{summary.corpus.name}' ({summary.utterances} utterances"
            f"{f', {summary.audio_clips} new audio clips' if summary.audio_clips else ''}), "
            f"project '{summary.project.name}'."
        ))
        for username, (password, role, _languages) in DEMO_ACCOUNTS.items():
            self.stdout.write(f"  {username:<10} {password:<24} {role}")
