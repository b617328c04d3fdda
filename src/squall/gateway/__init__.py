"""The platform's HTTP face: one Starlette app serving the admin API."""

from squall.gateway.app import create_app

__all__ = ["create_app"]
