"""What pretix's own OrderPayment cannot hold: the ANCV transaction behind it, the shopper's
attempt token (idempotent creation), a change sequence for SSE, and processed notification ids."""

import json

from django.db import models


class CvcoPayment(models.Model):
    order = models.ForeignKey("pretixbase.Order", on_delete=models.CASCADE, related_name="cvco_payments")
    order_payment = models.OneToOneField(
        "pretixbase.OrderPayment", on_delete=models.CASCADE, related_name="cvco_payment"
    )
    # The ANCV transaction id (the plugin Payment's `id`): the protocol's payment_id.
    payment_id = models.CharField(max_length=190, unique=True)
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
