"""The back-office: payment requests sent from the control panel or the API, and refund attempts."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("pretixbase", "0311_fix_unshredded_invoices"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("pretix_cvco", "0002_unknown_outcome"),
    ]

    operations = [
        migrations.CreateModel(
            name="CvcoPaymentRequest",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("request_id", models.CharField(max_length=190, unique=True)),
                ("payment_id", models.CharField(max_length=190, unique=True)),
                ("ancv_request_id", models.CharField(max_length=190, null=True, unique=True)),
                ("attempt", models.CharField(max_length=64)),
                ("delivery", models.CharField(default="email", max_length=10)),
                ("email_masked", models.CharField(blank=True, default="", max_length=190)),
                ("amount_cents", models.PositiveIntegerField()),
                ("outcome_unknown", models.BooleanField(default=True)),
                ("create_input", models.TextField(blank=True, default="")),
                ("reconcile_after", models.DateTimeField(null=True)),
                ("reconcile_attempts", models.PositiveIntegerField(default=0)),
                ("error", models.TextField(blank=True, default="")),
                ("data", models.TextField(default="{}")),
                ("status", models.CharField(default="unknown", max_length=30)),
                ("final", models.BooleanField(default=False)),
                ("sequence", models.PositiveIntegerField(default=1)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("updated", models.DateTimeField(auto_now=True)),
                ("refreshed", models.DateTimeField(null=True)),
                ("created_by", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                 related_name="+", to=settings.AUTH_USER_MODEL)),
                ("order", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                            related_name="cvco_requests", to="pretixbase.order")),
            ],
            options={"unique_together": {("order", "attempt")}},
        ),
        migrations.CreateModel(
            name="CvcoRefundAttempt",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("attempt", models.CharField(max_length=64)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("cvco_payment", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                   related_name="refund_attempts", to="pretix_cvco.cvcopayment")),
                ("order_refund", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE,
                                                      related_name="cvco_refund_attempt",
                                                      to="pretixbase.orderrefund")),
            ],
            options={"unique_together": {("cvco_payment", "attempt")}},
        ),
    ]
