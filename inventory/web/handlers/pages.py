"""HTML pages: server-rendered shells whose scripts read the JSON API (same origin)."""

from __future__ import annotations

from typing import Any

import tornado.web

from inventory.web.base import AuthenticatedHandler, BaseHandler

MAX_ARN = 2048


class RootHandler(BaseHandler):
    """``GET /``: the policies table is the front page."""

    def get(self) -> None:
        self.redirect("/policies")


class PageHandler(AuthenticatedHandler):
    """Renders one template with the signed-in identity; errors are HTML pages, not JSON."""

    template = ""
    page = ""

    def identity(self) -> tuple[str, bool]:
        """The signed-in name and whether it may review requests (the API enforces it too)."""
        user: Any = self.current_user
        name = getattr(user, "name", None) or (user if isinstance(user, str) else "")
        groups = {g.lower() for g in getattr(user, "groups", ()) or ()}
        admins = {g.lower() for g in self.inventory_settings.web.admin_groups}
        is_admin = getattr(user, "is_admin", None)
        return str(name), bool(is_admin if is_admin is not None else groups & admins)

    def render_page(self, **kwargs: Any) -> None:
        name, is_admin = self.identity()
        self.render(self.template, page=self.page, identity=name, is_admin=is_admin, **kwargs)

    def get(self) -> None:
        self.render_page()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        if status_code >= 500 or not isinstance(exc, tornado.web.HTTPError):
            super().write_error(status_code, **kwargs)
            return
        self.set_status(status_code)
        self.render(
            "error.html",
            page="",
            identity="",
            is_admin=False,
            status=status_code,
            message=exc.log_message or self._reason,
        )


class PoliciesPage(PageHandler):
    template, page = "policies.html", "policies"


class RequestsPage(PageHandler):
    template, page = "requests.html", "requests"


class AccountsPage(PageHandler):
    template, page = "accounts.html", "accounts"


class ResourcePage(PageHandler):
    """``GET /resource/<url-encoded ARN>``: the shell carries the ARN for ``resource.js``."""

    template, page = "resource.html", "policies"

    def get(self, arn: str) -> None:  # type: ignore[override]
        if not arn.startswith("arn:") or len(arn) > MAX_ARN:
            raise tornado.web.HTTPError(404, "that is not an ARN")
        self.render_page(arn=arn, name=arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1])


ROUTES = [
    (r"/", RootHandler),
    (r"/policies", PoliciesPage),
    (r"/resource/(.+)", ResourcePage),
    (r"/requests", RequestsPage),
    (r"/accounts", AccountsPage),
]
