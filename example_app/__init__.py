"""A multi-tenant FastAPI service calling a downstream API with per-tenant JWTs.

``python -m example_app`` runs three servers in one process:

- the token issuer   http://127.0.0.1:8001  (``issuer.py``: login and rotating refresh tokens)
- the downstream API http://127.0.0.1:8002  (``downstream.py``: wants the tenant's bearer token)
- the service        http://127.0.0.1:8000  (``service.py``: jwt_outbound's middleware at work)
"""
