"""What pretix's own OrderPayment cannot hold: the ANCV transaction behind it, the shopper's
attempt token (idempotent creation), the creation input while its outcome is unknown, a change
sequence for SSE, and processed notification ids."""

import json

from django.db import models


class CvcoPayment(models.Model):
    order = models.ForeignKey("pretixbase.Order", on_delete=models.CASCADE, related_name="cvco_payments")
    order_payment = models.OneToOneField(
        "pretixbase.OrderPayment", on_delete=models.CASCADE, related_name="cvco_payment"
    )
    # The protocol's payment_id, given before ANCV is called (so a payment whose creation answer
    # was lost still has one). Rows from before 0002 used the transaction id.
    payment_id = models.CharField(max_length=190, unique=True)
    # The ANCV transaction id (the plugin Payment's `id`); null while the creation's outcome is
    # unknown.
    transaction_id = models.CharField(max_length=190, unique=True, null=True)
    # The creation's outcome is unknown (lost answer, timeout, 5xx, crash mid-call): ANCV may hold
    # a transaction. Reconciled by replaying `create_input` (same idempotency key).
    outcome_unknown = models.BooleanField(default=False)
    # The exact create_payment input (JSON, without `now`), kept until the outcome is known.
    create_input = models.TextField(default="", blank=True)
    # When a reconciliation may be tried again (backoff), and how many were tried.
    reconcile_after = models.DateTimeField(null=True)
    reconcile_attempts = models.PositiveIntegerField(default=0)
    # The cvco error body (JSON) when ANCV refused the creation on reconciliation.
    error = models.TextField(default="", blank=True)
    attempt = models.CharField(max_length=64)
    mode = models.CharField(max_length=20, default="identifier")
    beneficiary_masked = models.CharField(max_length=190, blank=True, default="")
    # The last plugin Payment read from ANCV (JSON).
    data = models.TextField(default="{}")
    sequence = models.PositiveIntegerField(default=1)
    # Highest notification sequence applied: an older event is acknowledged and ignored.
    notification_sequence = models.BigIntegerField(default=0)
    final = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    refreshed = models.DateTimeField(null=True)

    class Meta:
        unique_together = (("order", "attempt"),)

    @property
    def payment(self):
        return json.loads(self.data)


class CvcoNotification(models.Model):
    event_id = models.CharField(max_length=190, unique=True)
    received = models.DateTimeField(auto_now_add=True)
