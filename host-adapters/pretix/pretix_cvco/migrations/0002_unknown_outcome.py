"""Payments whose creation outcome is unknown: the payment id is given before ANCV is called, the
transaction id (null until known) and the creation input are kept beside it."""

from django.db import migrations, models


def transaction_ids(apps, schema_editor):
    # Before this migration the payment id was the ANCV transaction id.
    CvcoPayment = apps.get_model("pretix_cvco", "CvcoPayment")
    CvcoPayment.objects.filter(transaction_id__isnull=True, outcome_unknown=False).update(
        transaction_id=models.F("payment_id")
    )


class Migration(migrations.Migration):

    dependencies = [
        ("pretix_cvco", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="cvcopayment",
            name="transaction_id",
            field=models.CharField(max_length=190, null=True, unique=True),
        ),
        migrations.AddField(
            model_name="cvcopayment",
            name="outcome_unknown",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="cvcopayment",
            name="create_input",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="cvcopayment",
            name="reconcile_after",
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name="cvcopayment",
            name="reconcile_attempts",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="cvcopayment",
            name="error",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.RunPython(transaction_ids, migrations.RunPython.noop),
    ]
