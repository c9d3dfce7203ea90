"""HTML pages: server-rendered shells whose scripts read the JSON API (same origin)."""

from __future__ import annotations

import json
from typing import Any

import tornado.web

from inventory.registry import public_kinds
from inventory.web.auth import Identity
from inventory.web.base import AuthenticatedHandler, BaseHandler
from inventory.web.handlers.history import TEMPLATE_HELPERS, resource_history
from inventory.web.models.changes import ResourcePageQuery

MAX_ARN = 2048
#: The registry's kinds for the page scripts (labels...): JSON in a body attribute (escaped
#: by the template), as the CSP allows no inline script.
KINDS_JSON = json.dumps(public_kinds())


class RootHandler(BaseHandler):
    """``GET /``: the policies table is the front page."""

    def get(self) -> None:
        self.redirect("/policies")


class PageHandler(AuthenticatedHandler):
    """Renders one template with the signed-in identity; errors are HTML pages, not JSON."""

    template = ""
    page = ""

    def render_page(self, **kwargs: Any) -> None:
        identity = self.identity
        self.render(
            self.template,
            page=self.page,
            identity=identity.name,
            signed_in_via=identity.via,
            # Only hides the review buttons: the API checks the groups again on every call.
            is_admin=identity.in_any(self.inventory_settings.web.admin_groups),
            kinds_json=KINDS_JSON,
            **kwargs,
        )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        if status_code >= 500 or not isinstance(exc, tornado.web.HTTPError):
            super().write_error(status_code, **kwargs)
            return
        # The identity as prepare() found it; never looked up again while answering an error.
        identity: Identity | None = getattr(self, "_current_user", None)
        self.set_status(status_code)
        self.render(
            "error.html",
            page="",
            identity=identity.name if identity else "",
            signed_in_via=identity.via if identity else "",
            is_admin=False,
            kinds_json=KINDS_JSON,
            status=status_code,
            message=exc.log_message or self._reason,
        )


class ShellPage(PageHandler):
    """A page whose shell needs nothing but the identity; its script loads the data."""

    def get(self) -> None:
        self.render_page()


class PoliciesPage(ShellPage):
    template, page = "policies.html", "policies"


class RequestsPage(ShellPage):
    template, page = "requests.html", "requests"


class AccountsPage(ShellPage):
    template, page = "accounts.html", "accounts"


class ResourcePage(PageHandler):
    """``GET /resource/<url-encoded ARN>``: the shell carries the ARN for ``resource.js``."""

    template, page = "resource.html", "policies"

    async def get(self, arn: str) -> None:
        if not arn.startswith("arn:") or len(arn) > MAX_ARN:
            raise tornado.web.HTTPError(404, "that is not an ARN")
        # ?kind= finds the history of a resource no longer cached (links from /changes).
        kind = self.query(ResourcePageQuery).kind or None
        self.render_page(
            arn=arn,
            name=arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1],
            history=await resource_history(self, arn, kind),
            **TEMPLATE_HELPERS,
        )


ROUTES = [
    (r"/", RootHandler),
    (r"/policies", PoliciesPage),
    (r"/resource/(.+)", ResourcePage),
    (r"/requests", RequestsPage),
    (r"/accounts", AccountsPage),
]
