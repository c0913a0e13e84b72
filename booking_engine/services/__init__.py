"""The use cases of calbook, one function each; the API and the worker call only these.

Each function opens one transaction on the ``Store``, loads fresh state, calls the domain,
writes the result and the domain events (outbox) together, and returns plain entities.
"""
