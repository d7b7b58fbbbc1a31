"""The request router: the HTTP front door speaking DynamoDB's JSON protocol."""

from dynamolog import native as _native

_native.use(__name__, __path__)  # the compiled modules, while they match their sources
