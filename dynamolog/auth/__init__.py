"""Authentication and access control: SigV4 verification, access keys, IAM-like policies, and
the shared key that authenticates the system's own services to each other.

Modules:

- :mod:`.sigv4` AWS Signature Version 4: verifies requests, and signs them for the client and the
  load generator (pure functions, no I/O).
- :mod:`.policy` evaluates IAM-like policy documents (actions on table ARN patterns).
- :mod:`.systemkey` the data directory's system key: encrypts secrets at rest and derives the
  internal RPC key.
- :mod:`.credentials` access keys in the compacted ``<ns>.credentials`` topic, credentials.env
  and AWS profile files.

See docs/security.md for the threat model and docs/decisions/0014-authentication.md.
"""

from dynamolog import native as _native

_native.use(__name__, __path__)  # the compiled modules, while they match their sources
