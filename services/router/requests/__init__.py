"""Each data-plane operation's request, parsed in one pass into a typed request.

A module per operation family holds every rule of its operations, in DynamoDB's order, with
DynamoDB's messages: ``writes`` (PutItem, UpdateItem, DeleteItem), ``get`` (GetItem),
``query`` and ``scan`` (with what they share in ``ranges``), ``batch`` (BatchWriteItem,
BatchGetItem) and ``transact`` (TransactWriteItems, TransactGetItems).  Legacy parameters
(``Expected``, ``AttributeUpdates``, ``KeyConditions``, ...) are translated into expressions
while parsing (``expressions`` calls services/router/legacy.py), so an executor
(services/router/items.py, batch.py, transact.py) sees only expressions and typed values, and
does only I/O.  PartiQL statements are translated into these operations' parameters first.

A parser takes the request's parameters and the table they name (the executor looks the table
up, since an unknown table is an error found between the parameter checks and the key checks)
and returns a frozen request or raises ``ApiError``; it never does I/O.
"""

from dynamolog import native as _native

_native.use(__name__, __path__)  # the compiled modules, while they match their sources
