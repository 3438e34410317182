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


# --- back-office (backoffice.py, control.py) ---------------------------------------------------

from . import backoffice_models  # NOQA: the back-office's models, registered at start-up
from pretix.control.signals import nav_event, order_info  # noqa: E402


@receiver(nav_event, dispatch_uid="payment_cvco_nav")
def control_nav(sender, request=None, **kwargs):
    """The event's CVCo transactions in the control panel's navigation."""
    from django.urls import reverse

    if not request.user.has_event_permission(request.organizer, request.event, "event.orders:read",
                                             request=request):
        return []
    url = reverse("plugins:pretix_cvco:control.transactions", kwargs={
        "organizer": request.event.organizer.slug, "event": request.event.slug})
    return [{"label": "Chèque-Vacances Connect", "url": url, "icon": "credit-card",
             "active": request.path.startswith(url)}]


@receiver(order_info, dispatch_uid="payment_cvco_order_info")
def control_order_info(sender, order=None, request=None, **kwargs):
    """Payment requests of the order on pretix's order page: send, follow, cancel."""
    if not request.user.has_event_permission(request.organizer, request.event, "event.orders:read",
                                             request=request):
        return ""
    from .control import order_panel

    return order_panel(request, order)


@receiver(periodic_task, dispatch_uid="payment_cvco_reconcile_requests")
def reconcile_requests(sender, **kwargs):
    """Unknown and open payment requests, stalled refunds: no notification is guaranteed."""
    from .backoffice import reconcile_all

    with scopes_disabled():
        reconcile_all()
