"""Request handlers by area; each module exposes ``ROUTES``. An API method declares its models
with ``api.operation`` (they live in ``web/models/<module>.py``), which describes it in
openapi.json."""
