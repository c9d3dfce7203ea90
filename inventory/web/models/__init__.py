"""The JSON API's query, body and response models, one module per handler module.

Adding an endpoint: its ``QueryModel`` (one field per parameter, each ``Annotated`` with a
``params`` rule), its ``BodyModel`` if it takes JSON, its ``ResponseModel`` (``Item`` for records
served as stored) here; then ``@operation(Response, query=..., body=...)`` on the handler method.
``openapi.json`` describes it from those, and tests/web/test_openapi.py checks that every API
route is described.
"""
