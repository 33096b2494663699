from django.apps import AppConfig


class ServicesConfig(AppConfig):
    name = "services"
    verbose_name = "Projects, servers and services"

    def ready(self) -> None:
        from daoflow.keys import report_generated_key

        report_generated_key()
