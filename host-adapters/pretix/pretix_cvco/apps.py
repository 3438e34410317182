from django.utils.translation import gettext_lazy

from pretix.base.plugins import PluginConfig

from . import __version__


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
