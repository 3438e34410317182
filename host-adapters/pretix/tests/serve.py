"""A real pretix serving one event with CVCo enabled, for the contract suite and by hand:

    CVCO_PLUGIN_WASM=… CVCO_SHOP_ID=… CVCO_CLIENT_ID=… CVCO_CLIENT_SECRET=… \\
    CVCO_NOTIFICATION_SECRET=… python tests/serve.py --port 8090 --sandbox-url http://127.0.0.1:7070

pretix's test settings (SQLite in a temporary directory, or in DATA_DIR when set: started again on
the same DATA_DIR it keeps its orders and payments; tables created without migrations), the
test-only order endpoint on, a threaded WSGI server on 127.0.0.1 that also serves the static files
(as `runserver` does; the widget from dist/widget or CVCO_WIDGET_DIST, see settings.py), so the
payment page works in a browser. Defaults: the sandbox demo shop. A staff account
(CVCO_STAFF_EMAIL / CVCO_STAFF_PASSWORD, default staff@example.org / staff-demo-1234) may use the
back-office (control panel, PROTOCOL.md §2 endpoints).
"""

import argparse
import datetime
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sandbox-url", default="http://127.0.0.1:7070")
    parser.add_argument("--organizer", default="demo")
    parser.add_argument("--event", default="shop")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE.parent))
    os.environ["DJANGO_LIVE_TEST_SERVER_ADDRESS"] = f"127.0.0.1:{args.port}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.core.servers.basehttp import run
    from django.core.wsgi import get_wsgi_application
    from django.utils.timezone import now
    from django_scopes import scopes_disabled

    from pretix.base.models import Event, Organizer

    call_command("migrate", run_syncdb=True, verbosity=0)
    with scopes_disabled():
        # Started again on the same DATA_DIR (after a kill): the shop is already there.
        if not Organizer.objects.filter(slug=args.organizer).exists():
            organizer = Organizer.objects.create(name="Contract", slug=args.organizer,
                                                 plugins="pretix.plugins.banktransfer")
            event = Event.objects.create(
                organizer=organizer, name="Contract shop", slug=args.event, currency="EUR", live=True,
                date_from=now() + datetime.timedelta(days=30), plugins="pretix_cvco,pretix.plugins.banktransfer",
            )
            settings = {
                "_enabled": True,
                "api_url": args.sandbox_url,
                "shop_id": os.environ.get("CVCO_SHOP_ID", "SHOP-DEMO-01"),
                "client_id": os.environ.get("CVCO_CLIENT_ID", "demo-client"),
                "client_secret": os.environ.get("CVCO_CLIENT_SECRET", "demo-secret"),
                "notification_secret": os.environ.get("CVCO_NOTIFICATION_SECRET", "whsec_demo_change_me"),
                "min_amount_cents": 2000,
                "adjustable": True,
            }
            for key, value in settings.items():
                event.settings.set(f"payment_cvco_{key}", value)
            # The back-office's staff account (pretix login; PROTOCOL.md §2 with that session).
            from pretix.base.models import Team, User

            staff = User.objects.create_user(os.environ.get("CVCO_STAFF_EMAIL", "staff@example.org"),
                                             os.environ.get("CVCO_STAFF_PASSWORD", "staff-demo-1234"))
            team = Team.objects.create(organizer=organizer, name="CVCo staff", all_events=True,
                                       all_event_permissions=True)
            team.members.add(staff)
    print(f"pretix serving http://127.0.0.1:{args.port}/{args.organizer}/{args.event}/cvco/v1", flush=True)
    run("127.0.0.1", args.port, StaticFilesHandler(get_wsgi_application()), threading=True)


if __name__ == "__main__":
    main()
