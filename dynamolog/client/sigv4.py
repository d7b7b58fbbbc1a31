"""The client's request signing: AWS Signature Version 4 from :mod:`dynamolog.auth.sigv4`, the
one implementation that the router also verifies with.

:func:`sign` returns the ``Authorization`` header for one request; every header handed to it is
signed (names lowercased, values trimmed and inner runs of spaces collapsed), so pass exactly the
headers that go on the wire (``host`` and ``x-amz-date`` included).
"""

from __future__ import annotations

from dynamolog.auth.sigv4 import ALGORITHM, amz_date, sign

__all__ = ["ALGORITHM", "amz_date", "sign"]
