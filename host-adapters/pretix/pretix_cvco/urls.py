from django.urls import include, re_path

from pretix.multidomain import event_url

from . import views

# Mounted by pretix under /{organizer}/{event}/ (and on event domains).
event_patterns = [
    re_path(
        r"^cvco/",
        include(
            [
                re_path(r"^v1/$", views.checkout, name="api_root"),
                re_path(r"^v1/checkout$", views.checkout, name="checkout"),
                re_path(r"^v1/payments$", views.payments, name="payments"),
                re_path(r"^v1/payments/(?P<payment_id>[^/]+)$", views.payment, name="payment"),
                re_path(r"^v1/payments/(?P<payment_id>[^/]+)/events$", views.events, name="events"),
                re_path(r"^v1/payments/(?P<payment_id>[^/]+)/cancel$", views.cancel, name="cancel"),
                event_url(r"^v1/notifications$", views.notifications, name="notifications", require_live=False),
                re_path(r"^pay/(?P<order>[^/]+)/(?P<secret>[A-Za-z0-9]+)/$", views.pay, name="pay"),
                re_path(r"^test-orders$", views.test_orders, name="test_orders"),
                re_path(r"^test-orders/(?P<order_ref>[^/]+)$", views.test_order, name="test_order"),
            ]
        ),
    ),
]
