"""The HTTP edge every function shares: routing, request limits, and errors as problem+json.

- ``routing``: ``Api`` and ``Route`` (werkzeug ``Map``/``Rule``, id converter, authentication,
  the one rule for malformed ids and query parameters, request metrics);
- ``problems``: the one mapping of exceptions to ``application/problem+json``;
- ``limits``: the WSGI middleware refusing oversized targets, headers and bodies before reading;
- ``cors``: the WSGI middleware answering browsers' preflights and marking answers for the
  allowed origins;
- ``bodies``: JSON request and response bodies;
- ``app``: ``start_function()``, which sets a functions-framework app up with all of the above.
"""

from filepipe.web.app import start_function
from filepipe.web.bodies import json_body, json_response
from filepipe.web.routing import Api, Route, bounded_int

__all__ = ["Api", "Route", "bounded_int", "json_body", "json_response", "start_function"]
