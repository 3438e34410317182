from django.urls import include, re_path

from pretix.multidomain import event_url

from . import control, staff_api, views

# Mounted by pretix under /{organizer}/{event}/ (and on event domains).
event_patterns = [
    re_path(
        r"^cvco/",
        include(
            [
                re_path(r"^v1/$", views.checkout, name="api_root"),
                re_path(r"^v1/checkout$", views.checkout, name="checkout"),
                re_path(r"^v1/payments$", views.payments, name="payments"),
                re_path(r"^v1/payments/(?P<payment_id>[^/]+)$", staff_api.payment, name="payment"),
                re_path(r"^v1/payments/(?P<payment_id>[^/]+)/events$", views.events, name="events"),
                re_path(r"^v1/payments/(?P<payment_id>[^/]+)/cancel$", views.cancel, name="cancel"),
                # Back-office (PROTOCOL.md §2) for pretix staff sessions: staff_api.py.
                re_path(r"^v1/payment-requests$", staff_api.payment_requests, name="payment_requests"),
                re_path(r"^v1/payment-requests/(?P<request_id>[^/]+)$", staff_api.payment_request,
                        name="payment_request"),
                re_path(r"^v1/payment-requests/(?P<request_id>[^/]+)/cancel$", staff_api.cancel_payment_request,
                        name="cancel_payment_request"),
                re_path(r"^v1/payments/(?P<payment_id>[^/]+)/refund$", staff_api.refund, name="refund"),
                re_path(r"^v1/transactions$", staff_api.transactions, name="transactions"),
                re_path(r"^staff/session$", staff_api.session, name="staff_session"),
                event_url(r"^v1/notifications$", views.notifications, name="notifications", require_live=False),
                re_path(r"^pay/(?P<order>[^/]+)/(?P<secret>[A-Za-z0-9]+)/$", views.pay, name="pay"),
                re_path(r"^test-orders$", views.test_orders, name="test_orders"),
                re_path(r"^test-orders/(?P<order_ref>[^/]+)$", views.test_order, name="test_order"),
                # Last: any other API path is the cvco 404, as on cvco-host.
                re_path(r"^v1/", views.not_found, name="not_found"),
            ]
        ),
    ),
]

# The control panel's CVCo pages (control.py).
urlpatterns = [
    re_path(r"^control/event/(?P<organizer>[^/]+)/(?P<event>[^/]+)/cvco/transactions/$",
            control.transactions, name="control.transactions"),
    re_path(r"^control/event/(?P<organizer>[^/]+)/(?P<event>[^/]+)/cvco/orders/(?P<code>[^/]+)/requests/$",
            control.order_requests, name="control.order_requests"),
    re_path(r"^control/event/(?P<organizer>[^/]+)/(?P<event>[^/]+)/cvco/requests/(?P<request_id>[^/]+)/cancel$",
            control.cancel_request, name="control.cancel_request"),
]
