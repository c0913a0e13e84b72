"""Pydantic models of the HTTP surface: request bodies (strict, unknown fields refused) and responses.

They exist for two reasons: the OpenAPI document must describe exactly what goes over the
wire (schemathesis holds us to it), and malformed input must stop at the edge as a 422
before it reaches a service. Business rules stay in ``booking_engine``; these models check
shapes and types only, and hand the services plain values.
"""
