"""Every failed answer under /cvco/v1/ is a cvco error body (PROTOCOL.md, Conventions), as
cvco-host's guard makes it: pretix answers some requests before any view of this plugin, with its
HTML pages (RejectInvalidInputMiddleware's 400 for a NUL byte in the query string, the 404 of an
organizer or event that does not exist, a 500 page). This middleware, the outermost one
(apps.py puts it first), rewrites such an answer; the views' own JSON answers pass unchanged."""

import logging
import re
from urllib.parse import parse_qsl

from django.http import HttpResponse

from . import cvco
from .cvco import CvcoError

logger = logging.getLogger(__name__)

API_PATH = re.compile(r"(?:^|/)cvco/v1(?:/|$)")
PLAIN_KEY = re.compile(r"[A-Za-z0-9_]+")


def _is_json(content_type):
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _nul_parameter(query_string):
    """The first query parameter holding a NUL byte (pretix refuses the whole query for it)."""
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        if "\x00" in key or "\x00" in value:
            return key if PLAIN_KEY.fullmatch(key) else "query"
    return "query"


def _error_for(request, status):
    if status == 404:
        return CvcoError.of("not_found")
    if status == 405:
        return CvcoError.of("invalid_request", detail_en="Method not allowed.", detail_fr="Méthode non autorisée.",
                            status=405)
    if status >= 500:
        return CvcoError.of("internal", status=status)
    if status == 401:
        return CvcoError.of("unauthorized")
    if status == 403:
        return CvcoError.of("forbidden")
    query = request.META.get("QUERY_STRING", "")
    if status == 400 and ("\x00" in query or "%00" in query):
        # An unreadable query parameter: 400 naming it, as the views answer one.
        return CvcoError.of("invalid_request", field=_nul_parameter(query), status=400)
    return CvcoError.of("invalid_request", detail_en="Unreadable request (path, headers).",
                        detail_fr="Requête illisible (chemin, en-têtes).", status=status)


class CvcoApiGuard:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (response.status_code < 400 or not API_PATH.search(request.path_info)
                or _is_json(response.get("Content-Type"))):
            return response
        try:
            error = _error_for(request, response.status_code)
        except CvcoError as unloadable:  # no plugin, no catalogue
            error = CvcoError(unloadable.body, status=500)
        logger.info("CVCo API %s %s: platform answer %s rewritten as %s", request.method, request.path_info,
                    response.status_code, error.code)
        rewritten = HttpResponse(cvco.dumps(error.body).encode("utf-8"), status=error.http_status,
                                 content_type="application/json")
        if response.has_header("Allow"):
            rewritten["Allow"] = response["Allow"]
        return rewritten
