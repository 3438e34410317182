"""The pretix payment provider: settings, checkout step, pending page with the live widget,
cancel and refund from the back-office."""

import logging
from collections import OrderedDict

from django import forms
from django.core.exceptions import ValidationError
from django.template.loader import get_template
from django.utils.translation import gettext_lazy as _

from pretix.base.forms import SECRET_REDACTED, SecretKeySettingsField
from pretix.base.models import OrderPayment, OrderRefund
from pretix.base.payment import BasePaymentProvider, PaymentException
from pretix.multidomain.urlreverse import build_absolute_uri, eventreverse

from . import cvco, services
from .cvco import CvcoError

logger = logging.getLogger(__name__)


class CvcoProvider(BasePaymentProvider):
    identifier = cvco.PROVIDER_ID
    verbose_name = _("Chèque-Vacances Connect")
    public_name = _("Chèque-Vacances Connect (ANCV)")
    abort_pending_allowed = True
    execute_payment_needs_user = True

    @property
    def test_mode_message(self):
        return _("Payments go to the acquisition server configured below (the sandbox in tests).")

    @property
    def settings_form_fields(self):
        fields = [
            ("api_url", forms.URLField(label=_("API URL"), help_text=_("ANCV acquisition server"),
                                       required=True)),
            ("shop_id", forms.CharField(label=_("Shop id (shopId)"), required=True)),
            ("client_id", forms.CharField(label=_("Client id"), required=True)),
            ("client_secret", SecretKeySettingsField(label=_("Client secret"), required=True)),
            ("notification_secret", SecretKeySettingsField(label=_("Notification secret"), required=True)),
            ("min_amount_cents", forms.IntegerField(label=_("Minimum amount (cents)"), min_value=1,
                                                    initial=2000, required=False)),
            ("adjustable", forms.BooleanField(label=_("The beneficiary may pay less (adjustment allowed)"),
                                              initial=True, required=False)),
            ("authorization_timeout_s", forms.IntegerField(
                label=_("Time the beneficiary has to confirm (seconds, as set at ANCV)"),
                min_value=10, initial=180, required=False)),
            ("request_timeout_ms", forms.IntegerField(
                label=_("Budget of one call to ANCV (milliseconds)"),
                help_text=_("Past it the call is abandoned; a payment created meanwhile is found again "
                            "by reconciliation."),
                min_value=500, max_value=60000, initial=10000, required=False)),
        ]
        return OrderedDict(list(super().settings_form_fields.items()) + fields)

    def settings_form_clean(self, cleaned_data):
        """Saving enabled settings runs the plugin's check_connection with them: a wrong URL,
        credentials or allowed host is refused here rather than at the first shopper's payment.
        ANCV merely unreachable (retryable) does not block saving."""
        config = cvco.plugin_config(_FormSettings(cleaned_data, self.settings, "payment_cvco_"))
        try:
            services.check_connection(config)
        except CvcoError as error:
            if error.retryable:
                logger.warning("CVCo connection check: %s (settings saved)", error.code)
                return cleaned_data
            field = {"unauthorized": "client_secret", "shop_not_affiliated": "shop_id"}.get(
                error.code, "api_url")
            raise ValidationError({
                f"payment_cvco_{field}": _("Chèque-Vacances Connect connection check failed: {message}").format(
                    message=error.body.get("message_en")),
            })
        return cleaned_data

    def settings_content_render(self, request):
        url = build_absolute_uri(self.event, "plugins:pretix_cvco:notifications")
        return str(_("Give ANCV this notification URL: {url}")).format(url=url)

    def _rules(self, total):
        """The plugin's checkout rules (minimum, eligibility) for an amount due."""
        amount = services.cents(total or 0)
        return services.eligibility(cvco.plugin_config(self.settings), self.event.currency, "cart", amount, amount)

    def is_allowed(self, request, total=None):
        allowed = super().is_allowed(request, total)
        if allowed and total is not None:
            try:
                return self._rules(total)["eligible"]
            except CvcoError as error:
                logger.warning("CVCo not offered: %s", error.code)
                return False
        return allowed

    def payment_form_render(self, request, total, order=None):
        return get_template("pretix_cvco/checkout_payment_form.html").render(
            {"min_amount": services.euros(self._rules(total)["min_amount_cents"])}
        )

    def checkout_prepare(self, request, cart):
        return True

    def payment_prepare(self, request, payment):
        return True

    def payment_is_valid_session(self, request):
        return True

    def checkout_confirm_render(self, request, order=None, info_data=None):
        return get_template("pretix_cvco/checkout_confirm.html").render({})

    def execute_payment(self, request, payment: OrderPayment):
        """The beneficiary confirms in the ANCV app: send the shopper to the widget page."""
        services.grant_order(request, payment.order)
        return eventreverse(self.event, "plugins:pretix_cvco:pay", kwargs={
            "order": payment.order.code, "secret": payment.order.secret,
        })

    def payment_pending_render(self, request, payment: OrderPayment):
        services.grant_order(request, payment.order)
        order = payment.order
        return get_template("pretix_cvco/pending.html").render({
            "pay_url": eventreverse(self.event, "plugins:pretix_cvco:pay", kwargs={
                "order": order.code, "secret": order.secret,
            }),
            "order_url": eventreverse(self.event, "presale:event.order", kwargs={
                "order": order.code, "secret": order.secret,
            }),
            "endpoint": eventreverse(self.event, "plugins:pretix_cvco:api_root").rstrip("/"),
            "order_ref": order.code,
            "locale": (getattr(request, "LANGUAGE_CODE", None) or order.locale or "fr")[:2],
        }, request=request)

    def payment_control_render(self, request, payment: OrderPayment):
        return get_template("pretix_cvco/control.html").render({"info": payment.info_data})

    def payment_control_render_short(self, payment: OrderPayment):
        return payment.info_data.get("transaction_id", "")

    def api_payment_details(self, payment: OrderPayment):
        info = payment.info_data
        return {key: info.get(key) for key in ("transaction_id", "status", "ancv_state", "authorizations")}

    def matching_id(self, payment: OrderPayment):
        return payment.info_data.get("transaction_id")

    def _cvco_payment(self, payment):
        return getattr(payment, "cvco_payment", None)

    def cancel_payment(self, payment: OrderPayment):
        """Back-office or shopper abort of a payment still waiting for the app: cancel it at ANCV
        first so it can no longer be authorized."""
        cp = self._cvco_payment(payment)
        if cp is not None and not cp.final:
            try:
                cp = services.cancel_payment(services.refresh(cp, force=True))
            except CvcoError as error:
                raise PaymentException(error.body.get("message_en"))
            payment.refresh_from_db()
            if payment.state != OrderPayment.PAYMENT_STATE_CANCELED:
                # ANCV authorized it before the cancel arrived: keep the truth.
                raise PaymentException(_("The payment was authorized before it could be cancelled."))
            return
        super().cancel_payment(payment)

    def payment_refund_supported(self, payment: OrderPayment):
        return self._cvco_payment(payment) is not None

    def payment_partial_refund_supported(self, payment: OrderPayment):
        return self._cvco_payment(payment) is not None

    def execute_refund(self, refund: OrderRefund):
        cp = self._cvco_payment(refund.payment)
        if cp is None:
            raise PaymentException(_("No Chèque-Vacances Connect transaction behind this payment."))
        try:
            services.execute_refund(refund, cp)
        except CvcoError as error:
            raise PaymentException(error.body.get("message_en"))

    def refund_control_render(self, request, refund: OrderRefund):
        return refund.info_data.get("transaction_id", "")


class _FormSettings:
    """The settings form's cleaned data read like the event's settings (a secret left masked
    keeps its stored value), for a connection check before saving."""

    def __init__(self, cleaned_data, stored, prefix):
        self.cleaned_data, self.stored, self.prefix = cleaned_data, stored, prefix

    def get(self, key, as_type=None, default=None):
        value = self.cleaned_data.get(self.prefix + key)
        if value is None or value == "" or value == SECRET_REDACTED:
            return self.stored.get(key, as_type=as_type, default=default) if as_type else self.stored.get(key) or default
        return value
