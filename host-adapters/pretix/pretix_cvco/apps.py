from django.utils.translation import gettext_lazy

from pretix.base.plugins import PluginConfig

from . import __version__

GUARD = "pretix_cvco.guard.CvcoApiGuard"


class PluginApp(PluginConfig):
    default = True
    name = "pretix_cvco"
    verbose_name = "Chèque-Vacances Connect"

    class PretixPluginMeta:
        name = gettext_lazy("Chèque-Vacances Connect")
        author = "cvco"
        description = gettext_lazy(
            "Accept ANCV Chèque-Vacances Connect, alone or together with another payment method."
        )
        visible = True
        version = __version__
        category = "PAYMENT"
        compatibility = "pretix>=2026.1"

    def ready(self):
        from . import signals  # NOQA

        # pretix gives plugins no middleware hook; the handler loads settings.MIDDLEWARE after
        # the apps are ready, so the guard (every failure under /cvco/v1/ a cvco error body,
        # guard.py) is put first here, the outermost: it sees what pretix's own answer.
        from django.conf import settings

        if GUARD not in settings.MIDDLEWARE:
            settings.MIDDLEWARE = [GUARD, *settings.MIDDLEWARE]
