"""The back-office's own records: payment requests sent by staff (MOTO with delay: ANCV e-mails
the beneficiary, or a QR code to show), and the `attempt` of each refund asked through the HTTP
API (so the same payment + attempt never refunds twice). Imported by signals.py at start-up."""

import json

from django.conf import settings
from django.db import models


class CvcoPaymentRequest(models.Model):
    order = models.ForeignKey("pretixbase.Order", on_delete=models.CASCADE, related_name="cvco_requests")
    # The protocol's request_id, given before ANCV is called (a request whose creation answer was
    # lost still has one).
    request_id = models.CharField(max_length=190, unique=True)
    # The protocol's payment_id of the request (what payment_in_progress names): the CvcoPayment
    # of its first transaction takes it; before that GET /payments/{id} answers the request.
    payment_id = models.CharField(max_length=190, unique=True)
    # ANCV's pre-transaction id; null while the creation's outcome is unknown.
    ancv_request_id = models.CharField(max_length=190, unique=True, null=True)
    attempt = models.CharField(max_length=64)
    delivery = models.CharField(max_length=10, default="email")
    email_masked = models.CharField(max_length=190, blank=True, default="")
    amount_cents = models.PositiveIntegerField()
    # The creation may have taken effect at ANCV without a usable answer: replayed with the same
    # input (same idempotency key) until known.
    outcome_unknown = models.BooleanField(default=True)
    create_input = models.TextField(default="", blank=True)
    reconcile_after = models.DateTimeField(null=True)
    reconcile_attempts = models.PositiveIntegerField(default=0)
    # The cvco error body (JSON) when ANCV refused the creation on reconciliation.
    error = models.TextField(default="", blank=True)
    # The last plugin PaymentRequest read from ANCV (JSON).
    data = models.TextField(default="{}")
    # The protocol status (awaiting_beneficiary, authorized, …, unknown), for filtering.
    status = models.CharField(max_length=30, default="unknown")
    final = models.BooleanField(default=False)
    sequence = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    refreshed = models.DateTimeField(null=True)

    class Meta:
        app_label = "pretix_cvco"
        unique_together = (("order", "attempt"),)

    @property
    def plugin_request(self):
        return json.loads(self.data)


class CvcoRefundAttempt(models.Model):
    """POST /payments/{id}/refund's `attempt` → the pretix refund it made."""

    cvco_payment = models.ForeignKey("pretix_cvco.CvcoPayment", on_delete=models.CASCADE,
                                     related_name="refund_attempts")
    attempt = models.CharField(max_length=64)
    order_refund = models.OneToOneField("pretixbase.OrderRefund", on_delete=models.CASCADE,
                                        related_name="cvco_refund_attempt")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "pretix_cvco"
        unique_together = (("cvco_payment", "attempt"),)
