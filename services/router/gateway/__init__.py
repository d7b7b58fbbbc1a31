"""The router's web side, beside the DynamoDB protocol on the same port: the REST gateway
(``/v1/...``, plain JSON; its OpenAPI document at ``/v1/openapi.json`` and interactive page at
``/v1/docs``) and the console (``/console``).  One ASGI application (FastAPI), called in-process
by the router's HTTP server through :mod:`.asgi` (decision 0036)."""
