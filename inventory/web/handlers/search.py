"""The policies table, typeahead and resource details: reads of the local search index and Redis."""

from __future__ import annotations

from typing import Any

import tornado.web

from inventory.cache.keys import (
    ACCOUNT,
    ALL_ACCOUNTS,
    AWS_MANAGED_POLICY,
    CLOUDTRAIL_ERRORS,
    GLOBAL,
    IAM_POLICY,
    ROLE_ACCESS,
    Partition,
)
from inventory.web import params
from inventory.web.base import AuthenticatedHandler
from inventory.web.search import MAX_LIMIT, SORT_COLUMNS, PolicySearch, Query


class SearchHandler(AuthenticatedHandler):
    @property
    def search(self) -> PolicySearch:
        search = self.readers.search
        if search is None:
            raise tornado.web.HTTPError(503, "search index unavailable")
        if not search.loaded:
            # The web tier listens at once; search answers once the first index is built.
            raise tornado.web.HTTPError(503, "search index is being built (see /readyz)")
        return search


class PoliciesHandler(SearchHandler):
    """``GET /api/v1/policies``: filter, sort and page every cached resource."""

    def get(self) -> None:
        query = Query(
            text=params.text(self, "q", 256),
            account=params.account(self, "account"),
            kind=params.token(self, "kind"),
            region=params.token(self, "region"),
            has_errors=params.boolean(self, "has_errors"),
            sort=params.choice(self, "sort", tuple(SORT_COLUMNS), "name"),
            descending=params.choice(self, "order", ("asc", "desc"), "asc") == "desc",
            offset=params.integer(self, "offset", 0, 0, 10_000_000),
            limit=params.integer(self, "limit", 50, 1, MAX_LIMIT),
        )
        page = self.search.query(query)
        self.write_json(page | {"offset": query.offset, "limit": query.limit})


class FacetsHandler(SearchHandler):
    """``GET /api/v1/policies/facets``: values for the filter menus."""

    def get(self) -> None:
        self.write_json(self.search.facets())


class ResourceTypeaheadHandler(SearchHandler):
    """``GET /api/v1/typeahead/resources?q=&kind=&limit=``: prefix, then substring, matches."""

    def get(self) -> None:
        text = params.text(self, "q", 256, required=True)
        assert text is not None
        results = self.search.typeahead_resources(
            text, params.token(self, "kind"), params.integer(self, "limit", 20, 1, 100)
        )
        self.write_json({"results": results})


class ManagedPolicyTypeaheadHandler(SearchHandler):
    """``GET /api/v1/typeahead/managed_policies?account=&q=``: for the policy editor."""

    def get(self) -> None:
        account = params.account(self, "account", required=True)
        assert account is not None
        text = params.text(self, "q", 128) or ""
        limit = params.integer(self, "limit", 20, 1, 100)
        self.write_json({"results": self.search.typeahead_managed_policies(account, text, limit)})


class ResourceDetailsHandler(AuthenticatedHandler):
    """``GET /api/v1/resource/details?arn=``: the record with everything the page shows."""

    def get(self) -> None:
        arn = params.arn(self)
        cache = self.readers.cache
        p = cache.locate(arn)
        record = None if p is None else cache.item(p, arn)
        if p is None or record is None:
            raise tornado.web.HTTPError(404, "no cached resource with that ARN")
        meta = cache.meta(p)
        account = cache.item(
            Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL), f"arn:aws:iam::{p.account_id}:root"
        )
        access = cache.item(Partition(ROLE_ACCESS, ALL_ACCOUNTS, GLOBAL), arn)
        self.write_json(
            {
                "record": record,
                "kind": p.kind,
                "account_id": p.account_id,
                "account_name": account["name"] if account else None,
                "region": p.region,
                "refreshed_at": meta.refreshed_at if meta else None,
                "attached_documents": self._documents(record, p.account_id),
                "cloudtrail_errors": cache.item(Partition(CLOUDTRAIL_ERRORS, p.account_id), arn),
                "principals": access["principals"] if access else [],
            }
        )

    def _documents(self, record: dict[str, Any], account_id: str) -> dict[str, Any]:
        documents: dict[str, Any] = {}
        for attached in record.get("attached_policies") or ():
            policy_arn = attached["arn"]
            if ":iam::aws:policy/" in policy_arn:
                found = self.readers.cache.item(Partition(AWS_MANAGED_POLICY, "aws"), policy_arn)
            else:
                found = self.readers.cache.item(Partition(IAM_POLICY, account_id), policy_arn)
            documents[policy_arn] = found.get("document") if found else None
        return documents


ROUTES = [
    (r"/api/v1/policies", PoliciesHandler),
    (r"/api/v1/policies/facets", FacetsHandler),
    (r"/api/v1/typeahead/resources", ResourceTypeaheadHandler),
    (r"/api/v1/typeahead/managed_policies", ManagedPolicyTypeaheadHandler),
    (r"/api/v1/resource/details", ResourceDetailsHandler),
]
