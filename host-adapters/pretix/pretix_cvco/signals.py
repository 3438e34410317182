import logging

from django.dispatch import receiver
from django.urls import resolve
from django_scopes import scopes_disabled

from pretix.base.signals import periodic_task, register_payment_providers
from pretix.presale.signals import process_response

logger = logging.getLogger(__name__)


@receiver(register_payment_providers, dispatch_uid="payment_cvco")
def register_payment_provider(sender, **kwargs):
    from .payment import CvcoProvider

    return CvcoProvider


@receiver(process_response, dispatch_uid="payment_cvco_csp")
def add_widget_csp(sender, request, response, **kwargs):
    """The widget is a wasm module: its pages need 'wasm-unsafe-eval' (nothing from elsewhere)."""
    from pretix.base.middleware import add_to_response_csp

    try:
        match = resolve(request.path_info)
    except Exception:
        return response
    if match.namespace == "plugins:pretix_cvco" or match.url_name in ("event.order", "event.order.pay"):
        add_to_response_csp(response, {"script-src": ["'wasm-unsafe-eval'"], "connect-src": ["'self'"]})
    return response


@receiver(periodic_task, dispatch_uid="payment_cvco_reconcile")
def reconcile(sender, **kwargs):
    """No notification is guaranteed: poll what is still open (ANCV expires it in the end)."""
    from .services import reconcile_open_payments

    with scopes_disabled():
        reconcile_open_payments()
