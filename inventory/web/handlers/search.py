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
from inventory.web.api import operation
from inventory.web.base import AuthenticatedHandler
from inventory.web.models.core import ByArn, Record
from inventory.web.models.search import (
    Facets,
    ManagedPolicyMatches,
    ManagedPolicyQuery,
    PoliciesQuery,
    PolicyPage,
    ResourceDetails,
    ResourceMatches,
    ResourceTypeaheadQuery,
)
from inventory.web.search import PolicySearch


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

    @operation(PolicyPage, query=PoliciesQuery)
    def get(self) -> None:
        """Filter, sort and page every cached resource (the policies table)."""
        query = self.query(PoliciesQuery)
        page = self.search.query(query.index_query())
        self.write_model(
            PolicyPage.model_validate(page | {"offset": query.offset, "limit": query.limit})
        )


class FacetsHandler(SearchHandler):
    """``GET /api/v1/policies/facets``: values for the filter menus."""

    @operation(Facets)
    def get(self) -> None:
        """Distinct kinds, accounts and regions for the filter menus."""
        self.write_model(Facets.model_validate(self.search.facets()))


class ResourceTypeaheadHandler(SearchHandler):
    """``GET /api/v1/typeahead/resources?q=&kind=&limit=``: prefix, then substring, matches."""

    @operation(ResourceMatches, query=ResourceTypeaheadQuery)
    def get(self) -> None:
        """ARNs whose name starts with, then contains, the text."""
        query = self.query(ResourceTypeaheadQuery)
        results = self.search.typeahead_resources(query.q, query.kind, query.limit)
        self.write_model(ResourceMatches.model_validate({"results": results}))


class ManagedPolicyTypeaheadHandler(SearchHandler):
    """``GET /api/v1/typeahead/managed_policies?account=&q=``: for the policy editor."""

    @operation(ManagedPolicyMatches, query=ManagedPolicyQuery)
    def get(self) -> None:
        """Managed policies the account can attach (its own and AWS's) whose name matches."""
        query = self.query(ManagedPolicyQuery)
        results = self.search.typeahead_managed_policies(query.account, query.q, query.limit)
        self.write_model(ManagedPolicyMatches.model_validate({"results": results}))


class ResourceDetailsHandler(AuthenticatedHandler):
    """``GET /api/v1/resource/details?arn=``: the record with everything the page shows."""

    @operation(ResourceDetails, query=ByArn, errors=(404,))
    def get(self) -> None:
        """A cached record with its partition, account, documents, errors and principals."""
        arn = self.query(ByArn).arn
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
        self.write_model(
            ResourceDetails(
                record=Record.model_validate(record),
                kind=p.kind,
                account_id=p.account_id,
                account_name=account["name"] if account else None,
                region=p.region,
                refreshed_at=meta.refreshed_at if meta else None,
                attached_documents=self._documents(record, p.account_id),
                cloudtrail_errors=cache.item(Partition(CLOUDTRAIL_ERRORS, p.account_id), arn),
                principals=access["principals"] if access else [],
            )
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
